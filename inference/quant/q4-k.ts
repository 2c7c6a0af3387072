/**
 * Q4_K (ggml-common.h `block_q4_K`): 256 values in 144 bytes:
 *   d: f16, dmin: f16, scales[12] (eight 6-bit scale/min pairs), qs[128].
 * Each 64-value chunk uses 32 bytes of qs: low nibbles are values 0..31 of the
 * chunk (sub-block 2c), high nibbles values 32..63 (sub-block 2c+1).
 * value = d*sc * q - dmin*m. Mirrors `quantize_row_q4_K_ref` / `dequantize_row_q4_K`.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { makeQkx2Quants, nearestInt, packScalesK4, scaleMinK4 } from "./k-quant-search.ts";

export const QK_K = 256;
export const Q4_K_BYTES = 144;

const fr = Math.fround;

export function dequantizeRowQ4_K(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK_K;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q4_K_BYTES) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    const min = FP16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
    for (let c = 0, q = o + 16; c < 4; c++, q += 32) {
      const sm1 = scaleMinK4(2 * c, src, o + 4);
      const sm2 = scaleMinK4(2 * c + 1, src, o + 4);
      const d1 = fr(d * (sm1 & 0xff));
      const m1 = fr(min * (sm1 >> 8));
      const d2 = fr(d * (sm2 & 0xff));
      const m2 = fr(min * (sm2 >> 8));
      for (let l = 0; l < 32; l++) dst[k++] = fr(d1 * (src[q + l] & 0xf)) - m1;
      for (let l = 0; l < 32; l++) dst[k++] = fr(d2 * (src[q + l] >> 4)) - m2;
    }
  }
}

// Scratch reused by every call: the quantizer allocates nothing per block.
const L = new Uint8Array(QK_K);
const laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(8);
const mins = new Float32Array(8);
const ls = new Uint8Array(8);
const lm = new Uint8Array(8);

/**
 * The per-block steps Q4_K and Q5_K share: fit each 32-value sub-block with
 * make_qkx2_quants, quantize scales/mins to 6 bits, write d, dmin and the
 * scales at `dst[at..at+16)`, then re-derive levels 0..nmax into `levels`
 * against the stored (rounded) scales.
 */
export function quantizeScalesAndLevelsK(
  x: Float32Array,
  i0: number,
  nmax: number,
  rmin: number,
  nstep: number,
  dst: Uint8Array,
  at: number,
  levels: Uint8Array,
): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const xo = i0 + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + l] * x[xo + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[xo + l]);
    const rdelta = fr(0.1);
    scales[j] = makeQkx2Quants(
      32,
      nmax,
      x,
      xo,
      weights,
      levels,
      32 * j,
      laux,
      rmin,
      rdelta,
      nstep,
      false,
      mins,
      j,
    );
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // uint8_t conversion of the int, then MIN(63, .)
    ls[j] = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    lm[j] = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
  }
  packScalesK4(ls, lm, dst, at + 4);
  const dh = f32ToFp16(fr(maxScale / 63));
  const mh = f32ToFp16(fr(maxMin / 63));
  putU16(dst, at, dh);
  putU16(dst, at + 2, mh);
  const dAll = FP16_TO_F32[dh];
  const mAll = FP16_TO_F32[mh];
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, dst, at + 4);
    const d = fr(dAll * (sm & 0xff));
    if (d === 0) continue; // keeps the levels the search chose, as ggml does
    const dm = fr(mAll * (sm >> 8));
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[i0 + 32 * j + ii] + dm) / d));
      levels[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

export function quantizeRowQ4_K(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_K;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_K, o += Q4_K_BYTES) {
    quantizeScalesAndLevelsK(x, i0, 15, -1, 20, dst, o, L);
    for (let c = 0, q = o + 16; c < 4; c++, q += 32) {
      for (let l = 0; l < 32; l++) dst[q + l] = L[64 * c + l] | (L[64 * c + l + 32] << 4);
    }
  }
}
