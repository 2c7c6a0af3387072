/**
 * Weight bandwidth of the matvec kernel per type and layout variant, then of
 * the prefill matmul for n tokens:
 *   npx deno run -A tests/bench/webgpu-matvec.ts [--reps 10] [--types Q4_0,Q8_0]
 *     [--matmul 8,64] [--matmul-types Q4_0,Q4_K]
 * Each measurement submits `reps` products in one command buffer and waits for
 * the queue, so the figure includes no readback. GB/s counts encoded weight bytes
 * per product; for matmul "x n" also counts them once per token (the bytes a
 * matvec per token would stream).
 */
import { parseArgs } from "node:util";
import { GgmlType, ggmlTypeName } from "../../inference/mod.ts";
import { quantize } from "../../inference/quant/mod.ts";
import { requestGpu } from "../../inference/webgpu/mod.ts";
import {
  createMatVec,
  type MatVecOptions,
  matVecRows4Supports,
} from "../../inference/webgpu/kernels/matvec.ts";
import { createMatMul, type MatMulVariant } from "../../inference/webgpu/kernels/matmul.ts";
import { matMulRows4Supports } from "../../inference/webgpu/kernels/matmul_rows4.ts";
import { destroyMatrix, uploadMatrix } from "../../inference/webgpu/weights.ts";
import { createF32, randomF32, uploadF32 } from "../support/gpu.ts";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "10" },
    types: { type: "string", default: "F32,F16,BF16,Q8_0,Q4_0,Q4_K,Q5_K,Q6_K" },
    shapes: { type: "string", default: "2048x2048,5632x2048" },
    matmul: { type: "string", default: "8,64" },
    "matmul-types": { type: "string", default: "Q4_0,Q4_K" },
    "matmul-variants": { type: "string", default: "tile,rows4" },
  },
});
const reps = Number(values.reps);
const gpu = await requestGpu();
const { device } = gpu;
console.log(`adapter: ${gpu.adapterName} (fallback ${gpu.isFallback}, f16 ${gpu.f16})`);

const VARIANTS: [string, MatVecOptions][] = [
  ["rows4", { variant: "rows4" }],
  ["row wg64", { variant: "row", workgroupSize: 64 }],
  ["row wg16", { variant: "row", workgroupSize: 16 }],
  ["workgroup wg64", { variant: "workgroup", workgroupSize: 64 }],
];

/** Weights for rows x cols: a few quantized random rows repeated (quantizing all is slow). */
function encodedMatrix(type: GgmlType, rows: number, cols: number): Uint8Array {
  const sample = 16;
  const enc = quantize(type, randomF32(sample * cols, 5), cols);
  const rowBytes = enc.length / sample;
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    out.set(enc.subarray((r % sample) * rowBytes, (r % sample + 1) * rowBytes), r * rowBytes);
  }
  return out;
}

async function timeOp(
  encode: (pass: GPUComputePassEncoder) => void,
  times = reps,
): Promise<number> {
  const run = async (n: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) encode(pass);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(1); // warm-up: pipeline compile and first touch of the buffers
  // Best of 3: other processes share the CPU that llvmpipe runs on. The time of
  // one product is subtracted: a submit and its wait cost ~11 ms in Deno
  // whatever they hold, which would otherwise count against each product.
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    best = Math.min(best, ((await run(times + 1)) - (await run(1))) / times);
  }
  return best;
}

const matvecTypes = values.types ? values.types.split(",") : [];
const header = ["type", "shape", "MB", ...VARIANTS.map(([n]) => n)];
if (matvecTypes.length > 0) console.log(header.join("\t"));
for (const shape of matvecTypes.length > 0 ? values.shapes.split(",") : []) {
  const [rows, cols] = shape.split("x").map(Number);
  for (const name of matvecTypes) {
    const type = GgmlType[name as keyof typeof GgmlType];
    const data = encodedMatrix(type, rows, cols);
    const m = uploadMatrix(device, { name, type, rows, cols, data });
    const rows4 = matVecRows4Supports(gpu, type, cols)
      ? uploadMatrix(device, { name, type, rows, cols, data }, { layout: "rows4" })
      : undefined;
    const x = uploadF32(device, randomF32(cols, 9));
    const y = createF32(device, rows);
    const row = [ggmlTypeName(type), shape, (data.length / 1e6).toFixed(1)];
    const variants: [string, MatVecOptions][] = type === GgmlType.F16 && gpu.f16
      ? [...VARIANTS, ["row wg64 f16-native", { variant: "row", f16Native: true }]]
      : VARIANTS;
    for (const [, opts] of variants) {
      if (opts.variant === "rows4" && !rows4) {
        row.push("-");
        continue;
      }
      const op = createMatVec(gpu, opts.variant === "rows4" ? rows4! : m, x, y, opts);
      const ms = await timeOp((p) => op.encode(p));
      row.push(`${(data.length / ms / 1e6).toFixed(2)} GB/s`);
      op.destroy();
    }
    console.log(row.join("\t"));
    destroyMatrix(m);
    if (rows4) destroyMatrix(rows4);
    x.destroy();
    y.destroy();
  }
}

const tokenCounts = values.matmul ? values.matmul.split(",").map(Number) : [];
const MATMUL_VARIANTS = values["matmul-variants"].split(",") as MatMulVariant[];
if (tokenCounts.length > 0) {
  console.log(["\nmatmul", "shape", "n", ...MATMUL_VARIANTS].join("\t"));
}
for (const shape of tokenCounts.length > 0 ? values.shapes.split(",") : []) {
  const [rows, cols] = shape.split("x").map(Number);
  for (const name of values["matmul-types"].split(",")) {
    const type = GgmlType[name as keyof typeof GgmlType];
    const data = encodedMatrix(type, rows, cols);
    const m = uploadMatrix(device, { name, type, rows, cols, data });
    // The rows4 kernel reads only the rows4 texture layout.
    const rows4 = matMulRows4Supports(type, cols)
      ? uploadMatrix(device, { name, type, rows, cols, data }, { layout: "rows4" })
      : undefined;
    const most = Math.max(...tokenCounts);
    const x = uploadF32(device, randomF32(most * cols, 9));
    const y = createF32(device, most * rows);
    const ops = MATMUL_VARIANTS.map((variant) =>
      variant === "rows4" && !rows4
        ? undefined
        : createMatMul(gpu, variant === "rows4" ? rows4! : m, x, y, { variant })
    );
    for (const n of tokenCounts) {
      const row = [ggmlTypeName(type), shape, String(n)];
      for (const op of ops) {
        if (!op) {
          row.push("-");
          continue;
        }
        // one op encodes one n per submit (its params are written at encode time)
        const ms = await timeOp((p) => op.encode(p, n), Math.max(1, Math.ceil(reps / n)));
        const gbs = data.length / ms / 1e6;
        row.push(`${ms.toFixed(1)} ms ${gbs.toFixed(2)} GB/s (x n: ${(gbs * n).toFixed(1)})`);
      }
      console.log(row.join("\t"));
    }
    for (const op of ops) op?.destroy();
    destroyMatrix(m);
    if (rows4) destroyMatrix(rows4);
    x.destroy();
    y.destroy();
  }
}
