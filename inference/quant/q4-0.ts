/**
 * Q4_0 (ggml-common.h `block_q4_0`): 32 values in 18 bytes, an f16 scale `d`
 * then 16 bytes of nibbles; byte j holds value j (low) and j+16 (high);
 * value = (q - 8) * d. Mirrors `quantize_row_q4_0_ref` / `dequantize_row_q4_0`.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { signedAbsMax } from "./k-quant-search.ts";

export const QK4_0 = 32;
export const Q4_0_BYTES = 18;

const fr = Math.fround;

export function dequantizeRowQ4_0(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK4_0;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q4_0_BYTES, k += QK4_0) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      dst[k + j] = ((q & 15) - 8) * d;
      dst[k + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

export function quantizeRowQ4_0(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK4_0;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK4_0, o += Q4_0_BYTES) {
    // The signed value of largest magnitude (first one wins) maps to -8.
    const max = signedAbsMax(x, i0, QK4_0);
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    putU16(dst, o, f32ToFp16(d));
    for (let j = 0; j < 16; j++) {
      // ggml truncates (int8_t)(v + 8.5f) rather than rounding: keep that.
      const q0 = Math.min(15, Math.trunc(fr(fr(x[i0 + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[i0 + 16 + j] * id) + 8.5)));
      dst[o + 2 + j] = q0 | (q1 << 4);
    }
  }
}
