/**
 * Q8_0 (ggml-common.h `block_q8_0`): 32 values in 34 bytes, an f16 scale `d`
 * then 32 int8 quants; value = q * d. Mirrors `quantize_row_q8_0_ref` and
 * `dequantize_row_q8_0` in ggml-quants.c, operation by operation in f32.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";

export const QK8_0 = 32;
export const Q8_0_BYTES = 34;

const fr = Math.fround;

export function dequantizeRowQ8_0(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK8_0;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q8_0_BYTES, k += QK8_0) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    for (let j = 0; j < QK8_0; j++) dst[k + j] = ((src[o + 2 + j] << 24) >> 24) * d;
  }
}

export function quantizeRowQ8_0(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK8_0;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK8_0, o += Q8_0_BYTES) {
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(x[i0 + j]));
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    putU16(dst, o, f32ToFp16(d));
    for (let j = 0; j < QK8_0; j++) {
      const v = fr(x[i0 + j] * id);
      // C roundf: halves go away from zero; the int8 store wraps like Uint8Array does.
      dst[o + 2 + j] = v < 0 ? -Math.round(-v) : Math.round(v);
    }
  }
}
