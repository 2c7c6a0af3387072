import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { matVecBatchF32Activations, quantize } from "../../quant/mod.ts";
import type { Gpu } from "../device.ts";
import { assertClose, createTestGpu, randomF32, readF32, uploadF32 } from "../gpu-test-util.ts";
import { uploadMatrix } from "../weights.ts";
import {
  createMatMul,
  defaultMatMulVariant,
  type MatMulOptions,
  matMulSupports,
  type MatMulVariant,
} from "./matmul.ts";

const TYPES = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
];

interface Case {
  type: GgmlType;
  rows: number;
  cols: number;
  n: number;
  split?: number;
  bias?: boolean;
  accumulate?: boolean;
  variant?: MatMulVariant;
  tileTokens?: number;
  /** Y rows of yStride floats with the product at column yOffset. */
  yStride?: number;
  yOffset?: number;
}

async function runCase(gpu: Gpu, c: Case, seed: number) {
  const { device } = gpu;
  const data = quantize(c.type, randomF32(c.rows * c.cols, seed), c.cols);
  const x = randomF32(c.n * c.cols, seed + 1);
  const product = new Float32Array(c.n * c.rows);
  matVecBatchF32Activations(c.type, data, c.rows, c.cols, x, c.n, product);
  const stride = c.yStride ?? c.rows;
  const at = (t: number, r: number) => t * stride + (c.yOffset ?? 0) + r;
  const bias = randomF32(c.rows, seed + 2);
  // Y starts random: columns outside the product must keep their values.
  const y0 = randomF32(c.n * stride, seed + 3);
  const want = y0.slice();
  for (let t = 0; t < c.n; t++) {
    for (let r = 0; r < c.rows; r++) {
      let v = product[t * c.rows + r];
      if (c.bias) v += bias[r];
      if (c.accumulate) v += y0[at(t, r)];
      want[at(t, r)] = v;
    }
  }
  const m = uploadMatrix(
    device,
    { name: "w", type: c.type, rows: c.rows, cols: c.cols, data },
    { maxBindingBytes: c.split },
  );
  if (c.split && m.parts.length < 2) throw new Error("split case produced one buffer");
  const xb = uploadF32(device, x);
  const yb = uploadF32(device, y0);
  const bb = c.bias ? uploadF32(device, bias) : undefined;
  const opts: MatMulOptions = {
    bias: bb,
    accumulate: c.accumulate,
    variant: c.variant,
    tileTokens: c.tileTokens,
    yStride: c.yStride,
    yOffset: c.yOffset,
  };
  const op = createMatMul(gpu, m, xb, yb, opts);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, c.n);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, yb, c.n * stride);
  const label = `${ggmlTypeName(c.type)} ${c.variant ?? "default"} ${c.rows}x${c.cols} ` +
    `n=${c.n}${c.split ? " split" : ""}${c.bias ? " +bias" : ""}${c.accumulate ? " +acc" : ""}` +
    `${c.yStride ? ` stride ${c.yStride}+${c.yOffset ?? 0}` : ""}`;
  assertClose(got, want, { atol: 2e-4, rtol: 1e-4 }, label);
  op.destroy();
  for (const b of [...m.buffers, xb, yb, ...(bb ? [bb] : [])]) b.destroy();
}

Deno.test("matmul matches the CPU oracle for every weight type and n in {1, 3, 17}", async () => {
  const gpu = await createTestGpu();
  let seed = 300;
  for (const type of TYPES) {
    for (const n of [1, 3, 17]) {
      await runCase(gpu, { type, rows: 67, cols: 256, n, variant: "tile" }, seed += 10);
    }
  }
});

Deno.test("matmul handles a split matrix, bias and accumulate", async () => {
  const gpu = await createTestGpu();
  await runCase(gpu, {
    type: GgmlType.Q8_0,
    rows: 37,
    cols: 256,
    n: 5,
    split: 20 * 272 + 32,
    bias: true,
    variant: "tile",
  }, 901);
  await runCase(gpu, {
    type: GgmlType.Q5_K,
    rows: 11,
    cols: 512,
    n: 9,
    split: 6 * 352 + 32,
    accumulate: true,
    variant: "tile",
  }, 902);
});

// rows4 (the llvmpipe kernel): tiles of 8 or 16 tokens, one dispatch per 256-column chunk.
Deno.test("matmul rows4 matches the CPU oracle for Q4_0 / Q4_K over tiles and chunks", async () => {
  const gpu = await createTestGpu();
  let seed = 1300;
  for (const type of [GgmlType.Q4_0, GgmlType.Q4_K]) {
    for (const n of [1, 3, 8, 17, 64]) {
      await runCase(gpu, { type, rows: 13, cols: 256, n, variant: "rows4" }, seed += 10);
    }
    // one chunk per 256 columns: 8 and 16 chunk dispatches adding into Y
    await runCase(gpu, { type, rows: 6, cols: 2048, n: 9, variant: "rows4" }, seed += 10);
    await runCase(gpu, { type, rows: 5, cols: 4096, n: 3, variant: "rows4" }, seed += 10);
  }
});

Deno.test("matmul rows4 handles split buffers, bias, accumulate, short tiles, strided and vec4 Y", async () => {
  const gpu = await createTestGpu();
  await runCase(gpu, {
    type: GgmlType.Q4_0,
    rows: 23,
    cols: 512,
    n: 10,
    split: 10 * 288 + 32,
    bias: true,
    accumulate: true,
    variant: "rows4",
    tileTokens: 5, // 2 tiles of 5 tokens
  }, 1901);
  await runCase(gpu, {
    type: GgmlType.Q4_K,
    rows: 7,
    cols: 512,
    n: 9,
    bias: true,
    variant: "rows4",
    yStride: 20,
    yOffset: 11,
  }, 1902);
  // rows, parts, stride and offset all multiples of 4: Y is stored as vec4s
  await runCase(gpu, {
    type: GgmlType.Q4_0,
    rows: 24,
    cols: 512,
    n: 20, // a 16-token tile and a short one
    split: 8 * 288,
    bias: true,
    accumulate: true,
    variant: "rows4",
    yStride: 28,
    yOffset: 4,
  }, 1903);
  await runCase(gpu, {
    type: GgmlType.Q4_K,
    rows: 12,
    cols: 256,
    n: 8,
    bias: true,
    variant: "rows4",
  }, 1904);
});

Deno.test("matmul picks rows4 on fallback adapters for Q4_0 / Q4_K only", () => {
  const fallback = { isFallback: true };
  if (defaultMatMulVariant(fallback, GgmlType.Q4_K, 2048) !== "rows4") {
    throw new Error("Q4_K on llvmpipe should use rows4");
  }
  if (defaultMatMulVariant(fallback, GgmlType.Q8_0, 2048) !== "tile") {
    throw new Error("Q8_0 has no rows4 kernel");
  }
  if (defaultMatMulVariant({ isFallback: false }, GgmlType.Q4_0, 2048) !== "tile") {
    throw new Error("real GPUs keep the tile kernel until measured");
  }
});

Deno.test("matMulSupports rejects partial blocks", () => {
  if (matMulSupports(GgmlType.Q6_K, 128)) throw new Error("Q6_K with 128 columns accepted");
  if (!matMulSupports(GgmlType.BF16, 8)) throw new Error("BF16 with 8 columns rejected");
});
