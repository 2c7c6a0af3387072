import * as assert from "node:assert/strict";
import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { quantize } from "../../quant/mod.ts";
import { GPU_WEIGHT_TYPES } from "../kernel-types.ts";
import { referenceProduct } from "../../../tests/support/dequant-product.ts";
import type { Gpu } from "../device.ts";
import {
  assertClose,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { destroyMatrix, uploadMatrix } from "../weights.ts";
import {
  createMatMul,
  defaultMatMulVariant,
  type MatMulOptions,
  matMulSupports,
  type MatMulVariant,
} from "./matmul.ts";

const TYPES = GPU_WEIGHT_TYPES;

interface Case {
  type: GgmlType;
  rows: number;
  cols: number;
  n: number;
  /** rows layout: largest buffer to bind (bytes), to force a split. */
  split?: number;
  /** rows4 layout: most rows per texture (a multiple of 4), to force a split. */
  splitRows?: number;
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
  const product = referenceProduct(c.type, data, c.rows, c.cols, x, c.n);
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
  const rows4 = c.variant === "rows4";
  const m = uploadMatrix(
    device,
    { name: "w", type: c.type, rows: c.rows, cols: c.cols, data },
    rows4 ? { layout: "rows4", maxTextureRows: c.splitRows } : { maxBindingBytes: c.split },
  );
  if ((c.split || c.splitRows) && m.parts.length < 2) {
    throw new Error("split case produced one part");
  }
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
    `n=${c.n}${c.split || c.splitRows ? " split" : ""}${c.bias ? " +bias" : ""}${
      c.accumulate ? " +acc" : ""
    }` +
    `${c.yStride ? ` stride ${c.yStride}+${c.yOffset ?? 0}` : ""}`;
  assertClose(got, want, { atol: 2e-4, rtol: 1e-4 }, label);
  op.destroy();
  destroyMatrix(m);
  for (const b of [xb, yb, ...(bb ? [bb] : [])]) b.destroy();
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

Deno.test("matmul reads blocks that straddle u32 words at every row alignment", async () => {
  const gpu = await createTestGpu();
  let seed = 1700;
  for (const type of [GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.IQ4_NL, GgmlType.MXFP4]) {
    await runCase(gpu, { type, rows: 13, cols: 96, n: 5, variant: "tile" }, seed += 10);
  }
  for (const type of [GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.IQ4_XS]) {
    await runCase(gpu, { type, rows: 9, cols: 768, n: 5, variant: "tile" }, seed += 10);
  }
  await runCase(gpu, {
    type: GgmlType.MXFP4,
    rows: 31,
    cols: 160,
    n: 9,
    split: 10 * 85 + 32,
    bias: true,
    accumulate: true,
    variant: "tile",
  }, seed += 10);
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

// rows4 (the llvmpipe kernel): tiles of 2, 4, 8 or 16 tokens; a dispatch per chunk of 512
// columns, with a 256-column tail chunk where the steps are odd.
Deno.test("matmul rows4 matches the CPU oracle for Q4_0 / Q4_K over tiles and chunks", async () => {
  const gpu = await createTestGpu();
  let seed = 1300;
  for (const type of [GgmlType.Q4_0, GgmlType.Q4_K]) {
    for (const n of [1, 2, 3, 4, 8, 17, 64]) {
      await runCase(gpu, { type, rows: 13, cols: 256, n, variant: "rows4" }, seed += 10);
    }
    // chunk dispatches adding into Y: 4 of two steps, 8 of two, 2 of two and a tail of one
    await runCase(gpu, { type, rows: 6, cols: 2048, n: 9, variant: "rows4" }, seed += 10);
    await runCase(gpu, { type, rows: 5, cols: 4096, n: 3, variant: "rows4" }, seed += 10);
    await runCase(gpu, { type, rows: 7, cols: 1280, n: 8, variant: "rows4" }, seed += 10);
  }
});

Deno.test("matmul rows4 handles split textures, bias, accumulate, short tiles, strided and vec4 Y", async () => {
  const gpu = await createTestGpu();
  await runCase(gpu, {
    type: GgmlType.Q4_0,
    rows: 23,
    cols: 512,
    n: 10,
    splitRows: 8, // 3 textures, the last ending mid-group of 4 rows
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
    splitRows: 8,
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
  // 20 rows per texture over 33: the second texture ends with one row of a group of 4
  await runCase(gpu, {
    type: GgmlType.Q4_K,
    rows: 33,
    cols: 512,
    n: 17,
    splitRows: 20,
    accumulate: true,
    variant: "rows4",
  }, 1905);
  await runCase(gpu, {
    type: GgmlType.Q4_0,
    rows: 33,
    cols: 256,
    n: 3,
    splitRows: 20,
    bias: true,
    variant: "rows4",
  }, 1906);
});

Deno.test("matmul rows4 rejects a matrix in the rows layout", async () => {
  const gpu = await createTestGpu();
  const { device } = gpu;
  const data = quantize(GgmlType.Q4_0, randomF32(4 * 256, 7), 256);
  const m = uploadMatrix(device, { name: "w", type: GgmlType.Q4_0, rows: 4, cols: 256, data });
  const xb = uploadF32(device, randomF32(256, 8));
  const yb = uploadF32(device, new Float32Array(4));
  assert.throws(
    () => createMatMul(gpu, m, xb, yb, { variant: "rows4" }),
    /w is in the rows layout, upload it as rows4/,
  );
  destroyMatrix(m);
  xb.destroy();
  yb.destroy();
});

Deno.test("matmul picks rows4 exactly for matrices in the rows4 layout", () => {
  for (const isFallback of [true, false]) {
    if (defaultMatMulVariant({ isFallback }, { layout: "rows4" }) !== "rows4") {
      throw new Error("a rows4-layout matrix should use rows4");
    }
    if (defaultMatMulVariant({ isFallback }, { layout: "rows" }) !== "tile") {
      throw new Error("a rows-layout matrix should use tile");
    }
  }
});

Deno.test("matMulSupports rejects partial blocks", () => {
  if (matMulSupports(GgmlType.Q6_K, 128)) throw new Error("Q6_K with 128 columns accepted");
  if (!matMulSupports(GgmlType.BF16, 8)) throw new Error("BF16 with 8 columns rejected");
});
