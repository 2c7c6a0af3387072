/**
 * Q5_K (ggml-common.h `block_q5_K`): 256 values in 176 bytes:
 *   d: f16, dmin: f16, scales[12], qh[32], qs[128].
 * Like Q4_K, plus a fifth bit per value: for chunk c (64 values), bit 2c of
 * qh[l] extends value l, bit 2c+1 extends value l+32.
 * Mirrors `quantize_row_q5_K_ref` / `dequantize_row_q5_K`.
 */
import { FP16_TO_F32 } from "./fp16.ts";
import { scaleMinK4 } from "./k-quant-search.ts";
import { QK_K, quantizeScalesAndLevelsK } from "./q4-k.ts";

export const Q5_K_BYTES = 176;

const fr = Math.fround;

export function dequantizeRowQ5_K(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK_K;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q5_K_BYTES) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    const min = FP16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
    const qh = o + 16;
    for (let c = 0, q = o + 48; c < 4; c++, q += 32) {
      const sm1 = scaleMinK4(2 * c, src, o + 4);
      const sm2 = scaleMinK4(2 * c + 1, src, o + 4);
      const d1 = fr(d * (sm1 & 0xff));
      const m1 = fr(min * (sm1 >> 8));
      const d2 = fr(d * (sm2 & 0xff));
      const m2 = fr(min * (sm2 >> 8));
      // Branch-free fifth bit: random bits make a conditional mispredict constantly.
      const s1 = 2 * c;
      const s2 = 2 * c + 1;
      for (let l = 0; l < 32; l++) {
        dst[k++] = fr(d1 * ((src[q + l] & 0xf) | (((src[qh + l] >> s1) & 1) << 4))) - m1;
      }
      for (let l = 0; l < 32; l++) {
        dst[k++] = fr(d2 * ((src[q + l] >> 4) | (((src[qh + l] >> s2) & 1) << 4))) - m2;
      }
    }
  }
}

const L = new Uint8Array(QK_K);

export function quantizeRowQ5_K(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_K;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_K, o += Q5_K_BYTES) {
    quantizeScalesAndLevelsK(x, i0, 31, -0.5, 15, dst, o, L);
    const qh = o + 16;
    for (let l = 0; l < 32; l++) dst[qh + l] = 0;
    for (let c = 0, q = o + 48; c < 4; c++, q += 32) {
      const m1 = 1 << (2 * c);
      const m2 = 2 << (2 * c);
      for (let j = 0; j < 32; j++) {
        let l1 = L[64 * c + j];
        if (l1 > 15) {
          l1 -= 16;
          dst[qh + j] |= m1;
        }
        let l2 = L[64 * c + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          dst[qh + j] |= m2;
        }
        dst[q + j] = l1 | (l2 << 4);
      }
    }
  }
}
