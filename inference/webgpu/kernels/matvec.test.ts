import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { quantize } from "../../quant/mod.ts";
import { GPU_WEIGHT_TYPES } from "../kernel-types.ts";
import { referenceProduct } from "../../../tests/support/dequant-product.ts";
import {
  assertClose,
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { destroyMatrix, uploadMatrix } from "../weights.ts";
import type { Gpu } from "../device.ts";
import {
  createMatVec,
  type MatVecOptions,
  matVecRows4Supports,
  matVecSupports,
  type MatVecVariant,
} from "./matvec.ts";

const TYPES = GPU_WEIGHT_TYPES;

interface Case {
  type: GgmlType;
  rows: number;
  cols: number;
  variant: MatVecVariant;
  split?: number; // force this many bytes per buffer
  splitRows?: number; // rows4: force this many rows per texture
  bias?: boolean;
  accumulate?: boolean;
  f16Native?: boolean;
}

async function runCase(gpu: Gpu, c: Case, seed: number) {
  const { device } = gpu;
  const w = randomF32(c.rows * c.cols, seed);
  const data = quantize(c.type, w, c.cols);
  const x = randomF32(c.cols, seed + 1);
  const want = referenceProduct(c.type, data, c.rows, c.cols, x, 1);
  const bias = randomF32(c.rows, seed + 2);
  const y0 = randomF32(c.rows, seed + 3);
  if (c.bias) { for (let r = 0; r < c.rows; r++) want[r] += bias[r]; }
  if (c.accumulate) { for (let r = 0; r < c.rows; r++) want[r] += y0[r]; }

  const m = uploadMatrix(
    device,
    { name: "w", type: c.type, rows: c.rows, cols: c.cols, data },
    {
      layout: c.variant === "rows4" ? "rows4" : "rows",
      maxBindingBytes: c.split,
      maxTextureRows: c.splitRows,
    },
  );
  if (c.split || c.splitRows) {
    if (m.parts.length < 2) throw new Error(`split case produced ${m.parts.length} buffer(s)`);
  }
  const xb = uploadF32(device, x);
  const yb = c.accumulate ? uploadF32(device, y0) : createF32(device, c.rows);
  const bb = c.bias ? uploadF32(device, bias) : undefined;
  const opts: MatVecOptions = {
    variant: c.variant,
    bias: bb,
    accumulate: c.accumulate,
    f16Native: c.f16Native,
  };
  const op = createMatVec(gpu, m, xb, yb, opts);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, yb, c.rows);
  const label = `${ggmlTypeName(c.type)} ${c.rows}x${c.cols} ${c.variant}` +
    `${c.split || c.splitRows ? " split" : ""}${c.bias ? " +bias" : ""}${
      c.accumulate ? " +acc" : ""
    }`;
  assertClose(got, want, { atol: 1e-4, rtol: 1e-4 }, label);
  op.destroy();
  destroyMatrix(m);
  for (const b of [xb, yb, ...(bb ? [bb] : [])]) b.destroy();
}

for (const variant of ["row", "workgroup"] as const) {
  Deno.test(`matvec (${variant}) matches the CPU oracle for every weight type`, async () => {
    const gpu = await createTestGpu();
    let seed = 10;
    for (const type of TYPES) {
      // 67 rows: odd and not a multiple of the workgroup size; 512 cols = 2 K-quant blocks.
      await runCase(gpu, { type, rows: 67, cols: 512, variant }, seed += 10);
    }
    if (gpu.f16) {
      for (const f16Native of [false, true]) {
        await runCase(gpu, { type: GgmlType.F16, rows: 5, cols: 36, variant, f16Native }, 7);
      }
    }
  });
}

// Rows of an odd number of blocks start at every byte offset mod 4 that the
// type allows: 22 / 18 / 17-byte blocks (MXFP4 rows start on odd bytes) and
// 110-byte Q3_K super-blocks.
Deno.test("matvec reads blocks that straddle u32 words at every row alignment", async () => {
  const gpu = await createTestGpu();
  let seed = 700;
  for (const variant of ["row", "workgroup"] as const) {
    for (const type of [GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.IQ4_NL, GgmlType.MXFP4]) {
      await runCase(gpu, { type, rows: 13, cols: 96, variant }, seed += 10);
    }
    for (const type of [GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.IQ4_XS]) {
      await runCase(gpu, { type, rows: 9, cols: 768, variant }, seed += 10);
    }
    await runCase(gpu, {
      type: GgmlType.MXFP4,
      rows: 31,
      cols: 160,
      variant,
      split: 10 * 85 + 32,
      bias: true,
      accumulate: true,
    }, seed += 10);
  }
});

Deno.test("matvec handles a matrix split across buffers, bias and accumulate", async () => {
  const gpu = await createTestGpu();
  // 33 rows of Q4_0 (18 * 8 = 144 bytes each), ~20 rows per buffer -> 2 buffers;
  // the second buffer's rows start mid-way in the row index space.
  for (const variant of ["row", "workgroup"] as const) {
    await runCase(gpu, {
      type: GgmlType.Q4_0,
      rows: 33,
      cols: 256,
      variant,
      split: 20 * 144 + 32,
      bias: true,
    }, 101);
    await runCase(gpu, {
      type: GgmlType.Q6_K,
      rows: 9,
      cols: 256,
      variant,
      split: 4 * 210 + 32,
      accumulate: true,
    }, 202);
  }
});

Deno.test("matvec rows4 (llvmpipe) matches the CPU oracle: tails, splits, bias, accumulate", async () => {
  const gpu = await createTestGpu();
  let seed = 400;
  for (const type of [GgmlType.Q4_0, GgmlType.Q4_K]) {
    // 67 rows: the last invocation holds 3 rows; 768 cols: 3 steps per row.
    await runCase(gpu, { type, rows: 67, cols: 768, variant: "rows4" }, seed += 10);
  }
  // 33 rows, 20 per texture: the second texture starts at row 20 and ends mid-group.
  await runCase(gpu, {
    type: GgmlType.Q4_0,
    rows: 33,
    cols: 256,
    variant: "rows4",
    splitRows: 20,
    bias: true,
    accumulate: true,
  }, 501);
  await runCase(gpu, {
    type: GgmlType.Q4_K,
    rows: 9,
    cols: 512,
    variant: "rows4",
    splitRows: 4,
    accumulate: true,
    bias: true,
  }, 502);
});

Deno.test("matVecRows4Supports takes Q4_0/Q4_K rows of whole 256-value steps", () => {
  const gpu = { limits: { maxUniformBufferBindingSize: 65536 } as GPUSupportedLimits };
  if (!matVecRows4Supports(gpu, GgmlType.Q4_0, 2048)) throw new Error("Q4_0 2048 rejected");
  if (!matVecRows4Supports(gpu, GgmlType.Q4_K, 5632)) throw new Error("Q4_K 5632 rejected");
  if (matVecRows4Supports(gpu, GgmlType.Q4_0, 96)) throw new Error("Q4_0 96 accepted");
  if (matVecRows4Supports(gpu, GgmlType.Q8_0, 2048)) throw new Error("Q8_0 accepted");
  // x beyond a 64 KiB uniform binding.
  if (matVecRows4Supports(gpu, GgmlType.Q4_0, 16640)) throw new Error("16640 cols accepted");
});

Deno.test("matVecSupports rejects partial blocks and unknown types", () => {
  if (matVecSupports(GgmlType.Q4_K, 64)) throw new Error("Q4_K with 64 columns accepted");
  if (matVecSupports(GgmlType.Q4_0, 48)) throw new Error("Q4_0 with 48 columns accepted");
  if (matVecSupports(GgmlType.IQ2_XXS, 256)) throw new Error("IQ2_XXS accepted");
  if (matVecSupports(GgmlType.Q3_K, 224)) throw new Error("Q3_K with 224 columns accepted");
  if (!matVecSupports(GgmlType.F32, 12)) throw new Error("F32 with 12 columns rejected");
});
