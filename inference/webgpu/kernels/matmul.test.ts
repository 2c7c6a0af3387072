import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { matVecBatchF32Activations, quantize } from "../../quant/mod.ts";
import type { Gpu } from "../device.ts";
import {
  assertClose,
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../gpu-test-util.ts";
import { uploadMatrix } from "../weights.ts";
import { createMatMul, type MatMulOptions, matMulSupports } from "./matmul.ts";

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
}

async function runCase(gpu: Gpu, c: Case, seed: number) {
  const { device } = gpu;
  const data = quantize(c.type, randomF32(c.rows * c.cols, seed), c.cols);
  const x = randomF32(c.n * c.cols, seed + 1);
  const want = new Float32Array(c.n * c.rows);
  matVecBatchF32Activations(c.type, data, c.rows, c.cols, x, c.n, want);
  const bias = randomF32(c.rows, seed + 2);
  const y0 = randomF32(c.n * c.rows, seed + 3);
  for (let t = 0; t < c.n; t++) {
    for (let r = 0; r < c.rows; r++) {
      if (c.bias) want[t * c.rows + r] += bias[r];
      if (c.accumulate) want[t * c.rows + r] += y0[t * c.rows + r];
    }
  }
  const m = uploadMatrix(
    device,
    { name: "w", type: c.type, rows: c.rows, cols: c.cols, data },
    { maxBindingBytes: c.split },
  );
  if (c.split && m.parts.length < 2) throw new Error("split case produced one buffer");
  const xb = uploadF32(device, x);
  const yb = c.accumulate ? uploadF32(device, y0) : createF32(device, c.n * c.rows);
  const bb = c.bias ? uploadF32(device, bias) : undefined;
  const opts: MatMulOptions = { bias: bb, accumulate: c.accumulate };
  const op = createMatMul(gpu, m, xb, yb, opts);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, c.n);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, yb, c.n * c.rows);
  const label = `${ggmlTypeName(c.type)} ${c.rows}x${c.cols} n=${c.n}` +
    `${c.split ? " split" : ""}${c.bias ? " +bias" : ""}${c.accumulate ? " +acc" : ""}`;
  assertClose(got, want, { atol: 1e-4, rtol: 1e-4 }, label);
  op.destroy();
  for (const b of [...m.buffers, xb, yb, ...(bb ? [bb] : [])]) b.destroy();
}

Deno.test("matmul matches the CPU oracle for every weight type and n in {1, 3, 17}", async () => {
  const gpu = await createTestGpu();
  let seed = 300;
  for (const type of TYPES) {
    for (const n of [1, 3, 17]) {
      await runCase(gpu, { type, rows: 67, cols: 256, n }, seed += 10);
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
  }, 901);
  await runCase(gpu, {
    type: GgmlType.Q5_K,
    rows: 11,
    cols: 512,
    n: 9,
    split: 6 * 352 + 32,
    accumulate: true,
  }, 902);
});

Deno.test("matMulSupports rejects partial blocks", () => {
  if (matMulSupports(GgmlType.Q6_K, 128)) throw new Error("Q6_K with 128 columns accepted");
  if (!matMulSupports(GgmlType.BF16, 8)) throw new Error("BF16 with 8 columns rejected");
});
