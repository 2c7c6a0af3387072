/**
 * Matrix-vector kernels for the unblocked float types. Rows are contiguous
 * `cols` values; four accumulators break the add dependency chain.
 */
import { BF16_TO_F32 } from "./bf16.ts";
import { FP16_TO_F32 } from "./fp16.ts";

export function matVecF32(
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
): void {
  const tail = cols & ~3;
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    let j = 0;
    for (; j < tail; j += 4) {
      a0 += w[o + j] * x[j];
      a1 += w[o + j + 1] * x[j + 1];
      a2 += w[o + j + 2] * x[j + 2];
      a3 += w[o + j + 3] * x[j + 3];
    }
    for (; j < cols; j++) a0 += w[o + j] * x[j];
    out[r] = a0 + a1 + a2 + a3;
  }
}

/** F16 or BF16 through their 65536-entry tables; `w` is the row data as 16-bit words. */
export function matVecHalf(
  table: Float32Array,
  w: Uint16Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
): void {
  const tail = cols & ~3;
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    let j = 0;
    for (; j < tail; j += 4) {
      a0 += table[w[o + j]] * x[j];
      a1 += table[w[o + j + 1]] * x[j + 1];
      a2 += table[w[o + j + 2]] * x[j + 2];
      a3 += table[w[o + j + 3]] * x[j + 3];
    }
    for (; j < cols; j++) a0 += table[w[o + j]] * x[j];
    out[r] = a0 + a1 + a2 + a3;
  }
}

export const matVecF16 = (
  w: Uint16Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
): void => matVecHalf(FP16_TO_F32, w, rows, cols, x, out);

export const matVecBf16 = (
  w: Uint16Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
): void => matVecHalf(BF16_TO_F32, w, rows, cols, x, out);
