/**
 * Q2_K (ggml-common.h `block_q2_K`): 256 values in 84 bytes:
 *   scales[16] (low nibble: scale, high nibble: min, per 16 values),
 *   qs[64] (2-bit levels), d: f16, dmin: f16.
 * Per 128-value half h, byte l of qs[32h..32h+32) holds, in bit pairs 0-1,
 * 2-3, 4-5, 6-7, values 128h + l, +32, +64, +96. value = d*sc * q - dmin*m.
 * Mirrors `quantize_row_q2_K_ref` / `dequantize_row_q2_K`.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { makeQkx2Quants, nearestInt } from "./k-quant-search.ts";
import { QK_K } from "./q4-k.ts";

export const Q2_K_BYTES = 84;

const fr = Math.fround;

export function dequantizeRowQ2_K(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK_K;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q2_K_BYTES) {
    const d = FP16_TO_F32[src[o + 80] | (src[o + 81] << 8)];
    const min = FP16_TO_F32[src[o + 82] | (src[o + 83] << 8)];
    for (let half = 0, is = o; half < 2; half++) {
      const q = o + 16 + 32 * half;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let part = 0; part < 32; part += 16) {
          const sc = src[is++];
          const dl = fr(d * (sc & 15));
          const ml = fr(min * (sc >> 4));
          for (let l = part; l < part + 16; l++) {
            dst[k++] = fr(dl * ((src[q + l] >> shift) & 3)) - ml;
          }
        }
      }
    }
  }
}

const L = new Uint8Array(QK_K);
const laux = new Uint8Array(16);
const weights = new Float32Array(16);
const scales = new Float32Array(16);
const mins = new Float32Array(16);

export function quantizeRowQ2_K(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_K;
  const q4scale = 15;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_K, o += Q2_K_BYTES) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      const xo = i0 + 16 * j;
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xo + l]);
      scales[j] = makeQkx2Quants(
        16,
        3,
        x,
        xo,
        weights,
        L,
        16 * j,
        laux,
        -0.5,
        fr(0.1),
        15,
        true,
        mins,
        j,
      );
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    let dh = 0;
    if (maxScale > 0) {
      const iscale = fr(q4scale / maxScale);
      for (let j = 0; j < 16; j++) dst[o + j] = nearestInt(fr(iscale * scales[j]));
      dh = f32ToFp16(fr(maxScale / q4scale));
    } else {
      for (let j = 0; j < 16; j++) dst[o + j] = 0;
    }
    let mh = 0;
    if (maxMin > 0) {
      const iscale = fr(q4scale / maxMin);
      for (let j = 0; j < 16; j++) dst[o + j] |= nearestInt(fr(iscale * mins[j])) << 4;
      mh = f32ToFp16(fr(maxMin / q4scale));
    }
    putU16(dst, o + 80, dh);
    putU16(dst, o + 82, mh);
    for (let j = 0; j < 16; j++) {
      const d = fr(FP16_TO_F32[dh] * (dst[o + j] & 15));
      if (d === 0) continue; // keeps the levels the search chose, as ggml does
      const dm = fr(FP16_TO_F32[mh] * (dst[o + j] >> 4));
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(fr(x[i0 + 16 * j + ii] + dm) / d));
        L[16 * j + ii] = Math.max(0, Math.min(3, l));
      }
    }
    for (let h = 0; h < 2; h++) {
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        dst[o + 16 + 32 * h + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
          (L[j + l + 96] << 6);
      }
    }
  }
}
