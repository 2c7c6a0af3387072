/**
 * matVec runs float kernels over the decoded activations; these tests pin it
 * to the integer block dots of tests/support/quant/ (ggml's vec_dot
 * arithmetic), for one vector and for the batched path that decodes each
 * weight row once: they may differ only by f64 rounding, i.e. at most one f32
 * step of the output.
 */
import assert from "node:assert/strict";
import { ggmlTypeName, isQuantWeightType, SUPPORTED_WEIGHT_TYPES } from "../ggml-type.ts";
import { quantizeActivations } from "./activations.ts";
import { quantize } from "./codec.ts";
import { integerDots, randoms } from "../../tests/support/quant/dots.ts";
import { matVec, matVecBatch } from "./matvec.ts";
import { setWasmKernels } from "./wasm/mod.ts";

/** At most one f32 step apart: what f64 rounding before the final f32 store can cause. */
function assertOneUlp(got: Float32Array, want: Float32Array, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const ulp = Math.max(Math.abs(want[i]) * 2 ** -23, 2 ** -149);
    assert.ok(Math.abs(got[i] - want[i]) <= ulp, `${what} [${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/** Every block-quantized weight type. */
const TYPES = SUPPORTED_WEIGHT_TYPES.filter(isQuantWeightType);

for (const type of TYPES) {
  const name = ggmlTypeName(type);
  Deno.test(`matVec ${name} equals ggml's integer block dot`, () => {
    const [rows, cols] = [9, 768];
    const w = quantize(type, randoms(rows * cols, 3), cols);
    const x = randoms(cols, 4);
    const got = new Float32Array(rows);
    const want = new Float32Array(rows);
    matVec(type, w, rows, cols, x, got);
    integerDots(type, w, rows, cols, quantizeActivations(type, x, cols), want);
    assertOneUlp(got, want, name);
  });

  Deno.test(`matVecBatch ${name} with a shared row decode equals the integer dots`, () => {
    // n = 6: one pass of four vectors plus two leftovers.
    const [rows, cols, n] = [5, 512, 6];
    const w = quantize(type, randoms(rows * cols, 7), cols);
    const xs = randoms(n * cols, 8);
    const got = new Float32Array(n * rows);
    const want = new Float32Array(n * rows);
    matVecBatch(type, w, rows, cols, xs, n, got);
    integerDots(type, w, rows, cols, quantizeActivations(type, xs, cols, n), want);
    assertOneUlp(got, want, `${name} n=${n}`);
  });
}

// The same with the WASM kernels off: the TypeScript fallback (no SIMD, or
// weights past the 4 GiB wasm32 memory) must agree with ggml too.
for (const type of TYPES) {
  const name = ggmlTypeName(type);
  Deno.test(`matVec ${name} without WASM (one vector and six) equals the integer dots`, () => {
    setWasmKernels(false);
    try {
      for (const n of [1, 6]) {
        const [rows, cols] = [5, 512];
        const w = quantize(type, randoms(rows * cols, 13), cols);
        const xs = randoms(n * cols, 14);
        const got = new Float32Array(n * rows);
        const want = new Float32Array(n * rows);
        matVecBatch(type, w, rows, cols, xs, n, got);
        integerDots(type, w, rows, cols, quantizeActivations(type, xs, cols, n), want);
        assertOneUlp(got, want, `${name} n=${n}`);
      }
    } finally {
      setWasmKernels(true);
    }
  });
}
