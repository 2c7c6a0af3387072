import assert from "node:assert/strict";
import { rmsNorm } from "../../reference.ts";
import {
  assertClose,
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindRowNorm, prepareRowNorm } from "./row_norm.ts";

function cpuRows(x: Float32Array, w: Float32Array, n: number, rows: number, eps: number, at = 0) {
  const out = x.slice();
  for (let r = 0; r < rows; r++) rmsNorm(out, x, w, eps, n, at + r * n);
  return out;
}

const TOL = { atol: 1e-6, rtol: 1e-5 };

Deno.test("row_norm: hidden rows of several widths match rmsNorm", async () => {
  const { device } = await createTestGpu();
  await prepareRowNorm(device, false);
  // below, at and above the workgroup width; 288 and 1000 are not powers of two; 1001 goes
  // value by value, the others by vec4s
  for (const [n, rows, seed] of [[8, 5, 1], [64, 3, 2], [288, 4, 3], [1000, 2, 4], [1001, 2, 5]]) {
    const x = randomF32(n * rows, seed, 3);
    const w = randomF32(n, seed + 100, 1.5);
    const xb = uploadF32(device, x), wb = uploadF32(device, w), out = createF32(device, n * rows);
    const k = bindRowNorm(device, { x: xb, weight: wb, out }, { n, rows, eps: 1e-5 });
    submitKernels(device, [k]);
    assertClose(await readF32(device, out, n * rows), cpuRows(x, w, n, rows, 1e-5), TOL, `n=${n}`);
    // the input is left alone
    assertClose(await readF32(device, xb, n * rows), x, { atol: 0, rtol: 0 }, "x untouched");
  }
});

Deno.test("row_norm: per-head Q/K norm in place with offsets and a large eps", async () => {
  const { device } = await createTestGpu();
  await prepareRowNorm(device, true);
  const headDim = 8, heads = 6, tokens = 3;
  const rows = heads * tokens;
  // offset 10: value by value; 12: by vec4s
  for (const at of [10, 12]) {
    const x = randomF32(at + rows * headDim + 7, 9, 0.01);
    const w = randomF32(headDim, 10);
    // tiny inputs make eps matter: a wrong eps placement shows
    const eps = 1e-4;
    const xb = uploadF32(device, x), wb = uploadF32(device, w);
    const k = bindRowNorm(device, { x: xb, weight: wb }, { n: headDim, rows, eps, xOffset: at });
    submitKernels(device, [k]);
    const want = cpuRows(x, w, headDim, rows, eps, at);
    assertClose(await readF32(device, xb, x.length), want, TOL, `in place at ${at}`);
    if (at === 12) {
      assert.throws(() => k.update({ n: headDim, rows, eps, xOffset: 10 }), /bound for vec4s/);
    }
  }
});

Deno.test("row_norm: update() rebinds new params without a new bind group", async () => {
  const { device } = await createTestGpu();
  const n = 64;
  const x = randomF32(n * 4, 21), w = randomF32(n, 22);
  const xb = uploadF32(device, x), wb = uploadF32(device, w), out = createF32(device, n * 4);
  const k = bindRowNorm(device, { x: xb, weight: wb, out }, { n, rows: 1, eps: 1e-6 });
  k.update({ n, rows: 4, eps: 1e-6 });
  submitKernels(device, [k]);
  assertClose(await readF32(device, out, n * 4), cpuRows(x, w, n, 4, 1e-6), TOL);
});
