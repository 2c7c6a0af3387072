import assert from "node:assert/strict";
import { GgmlType, ggmlTypeName, SUPPORTED_WEIGHT_TYPES } from "../ggml-type.ts";
import { dequantize, quantize } from "./codec.ts";
import { quantizeActivations } from "./activations.ts";
import { matVec, matVecBatch } from "./matvec.ts";
import { matVecF32Activations } from "./matvec-f32-act.ts";
import { fp16ToF32 } from "./fp16.ts";

function randoms(n: number, seed: number): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  return new Float32Array(n).map(() => r() * 2 + r() * r());
}

/** Reference: decode the whole matrix, then dot each row in double precision. */
function reference(type: GgmlType, w: Uint8Array, rows: number, cols: number, x: Float32Array) {
  const m = dequantize(type, w, rows * cols);
  const out = new Float64Array(rows);
  const scale = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      out[r] += m[r * cols + j] * x[j];
      scale[r] += Math.abs(m[r * cols + j] * x[j]);
    }
  }
  return { out, scale };
}

/** The activations as llama.cpp's CPU backend rounds them for `type`, back in f32. */
function roundedActivations(type: GgmlType, x: Float32Array, cols: number): Float32Array {
  const a = quantizeActivations(type, x, cols);
  if (a.form !== "q8_0" && a.form !== "q8_1" && a.form !== "q8_K") return a.values.slice(0, cols);
  const block = a.form === "q8_K" ? 256 : 32;
  return Float32Array.from({ length: cols }, (_, j) => a.qs[j] * a.d[Math.floor(j / block)]);
}

/**
 * Q5_1 against Q8_1: ggml's min term is m * s per block, s being the f16 the
 * activation quantizer rounded d * level sum to, not the rounded d times the
 * level sum. What that moves each row by, to add to `reference`.
 */
function q8_1Correction(w: Uint8Array, rows: number, cols: number, x: Float32Array) {
  const a = quantizeActivations(GgmlType.Q5_1, x, cols);
  const nb = cols / 32;
  return Float64Array.from({ length: rows }, (_, r) => {
    let c = 0;
    for (let b = 0; b < nb; b++) {
      const m = fp16ToF32(w[(r * nb + b) * 24 + 2] | (w[(r * nb + b) * 24 + 3] << 8));
      let sum = 0;
      for (let j = 32 * b; j < 32 * b + 32; j++) sum += a.qs[j];
      c += m * (a.s[b] - a.d[b] * sum);
    }
    return c;
  });
}

for (const type of SUPPORTED_WEIGHT_TYPES) {
  Deno.test(`matVec ${ggmlTypeName(type)} dots the weights with x rounded as llama.cpp does`, () => {
    for (const [rows, cols] of [[1, 256], [3, 512], [7, 768]]) {
      const w = quantize(type, randoms(rows * cols, rows + cols), cols);
      const x = randoms(cols, 17 * rows);
      const out = new Float32Array(rows);
      matVec(type, w, rows, cols, x, out);
      const ref = reference(type, w, rows, cols, roundedActivations(type, x, cols));
      if (type === GgmlType.Q5_1) {
        const c = q8_1Correction(w, rows, cols, x);
        for (let r = 0; r < rows; r++) ref.out[r] += c[r];
      }
      const exact = reference(type, w, rows, cols, x);
      let rounding = 0;
      for (let r = 0; r < rows; r++) {
        const tol = 1e-6 * ref.scale[r] + 1e-30;
        assert.ok(
          Math.abs(out[r] - ref.out[r]) <= tol,
          `${rows}x${cols} row ${r}: ${out[r]} vs ${ref.out[r]}`,
        );
        // Rounding x costs at most a few 8-bit steps of the magnitude.
        rounding = Math.max(rounding, Math.abs(out[r] - exact.out[r]) / exact.scale[r]);
      }
      assert.ok(rounding < 1e-2, `${rows}x${cols}: activation rounding moved it by ${rounding}`);
      if (type !== GgmlType.F32) assert.ok(rounding > 0, "activations were not rounded");
    }
  });

  Deno.test(`matVecF32Activations ${ggmlTypeName(type)} equals dequantize-then-dot`, () => {
    for (const [rows, cols] of [[1, 256], [3, 512], [7, 768]]) {
      const w = quantize(type, randoms(rows * cols, rows + cols), cols);
      const x = randoms(cols, 17 * rows);
      const out = new Float32Array(rows);
      matVecF32Activations(type, w, rows, cols, x, out);
      const ref = reference(type, w, rows, cols, x);
      for (let r = 0; r < rows; r++) {
        const tol = 1e-6 * ref.scale[r] + 1e-30;
        assert.ok(
          Math.abs(out[r] - ref.out[r]) <= tol,
          `${rows}x${cols} row ${r}: ${out[r]} vs ${ref.out[r]}`,
        );
      }
    }
  });

  Deno.test(`matVecBatch ${ggmlTypeName(type)} equals matVec per input vector`, () => {
    const [rows, cols, n] = [5, 512, 3];
    const w = quantize(type, randoms(rows * cols, 9), cols);
    const xs = randoms(n * cols, 10);
    const out = new Float32Array(n * rows);
    matVecBatch(type, w, rows, cols, xs, n, out);
    const one = new Float32Array(rows);
    for (let v = 0; v < n; v++) {
      matVec(type, w, rows, cols, xs.subarray(v * cols, (v + 1) * cols), one);
      for (let r = 0; r < rows; r++) {
        assert.ok(
          Math.abs(out[v * rows + r] - one[r]) <= 1e-5 * (Math.abs(one[r]) + 1),
          `v${v} r${r}`,
        );
      }
    }
  });
}

Deno.test("matVec reads weights at any byte offset of their buffer", () => {
  const [rows, cols] = [3, 64];
  const x = randoms(cols, 2);
  for (const type of [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0]) {
    const w = quantize(type, randoms(rows * cols, 1), cols);
    const shifted = new Uint8Array(w.length + 3);
    shifted.set(w, 1);
    const a = new Float32Array(rows);
    const b = new Float32Array(rows);
    matVec(type, w, rows, cols, x, a);
    matVec(type, shifted.subarray(1), rows, cols, x, b);
    assert.deepEqual(b, a, ggmlTypeName(type));
  }
});

Deno.test("matVec names the problem when shapes do not fit", () => {
  const w = new Uint8Array(18 * 2);
  const out = new Float32Array(2);
  assert.throws(() => matVec(GgmlType.Q4_0, w, 2, 48, new Float32Array(48), out), /whole blocks/);
  assert.throws(() => matVec(GgmlType.Q4_0, w, 3, 32, new Float32Array(32), out), /needs 54 bytes/);
  assert.throws(() => matVec(GgmlType.Q4_0, w, 2, 32, new Float32Array(31), out), /input has 31/);
  assert.throws(
    () => matVec(GgmlType.Q4_0, w, 2, 32, new Float32Array(32), new Float32Array(1)),
    /output/,
  );
  assert.throws(
    () => matVec(GgmlType.IQ2_XXS, new Uint8Array(66), 1, 256, new Float32Array(256), out),
    /IQ2_XXS/,
  );
});
