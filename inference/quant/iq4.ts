/**
 * IQ4_NL and IQ4_XS (ggml-common.h `block_iq4_nl`, `block_iq4_xs`): 4-bit
 * indices into a non-linear table of int8 levels (`kvalues_iq4nl`), nibbles
 * laid out per 32 values as Q4_0's (byte j: value j low, j+16 high).
 *   IQ4_NL, 32 values in 18 bytes: d: f16, qs[16]; value = d * kvalues[q].
 *   IQ4_XS, 256 values in 136 bytes: d: f16, scales_h: u16, scales_l[4],
 *   qs[128]; each 32-value sub-block ib has a 6-bit scale ls (low 4 bits in
 *   nibble ib % 2 of scales_l[ib / 2], high 2 bits at bit 2 * ib of
 *   scales_h); value = d * (ls - 32) * kvalues[q].
 * Mirrors `quantize_row_iq4_{nl,xs}_ref` (quantize_row_iq4_nl_impl without
 * importance weights) and `dequantize_row_iq4_{nl,xs}`.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { GROUP_MAX_EPS, nearestInt, signedAbsMax } from "./k-quant-search.ts";
import { QK_K } from "./q4-k.ts";

export const QK4_NL = 32;
export const IQ4_NL_BYTES = 18;
export const IQ4_XS_BYTES = 136;

/** ggml's kvalues_iq4nl. */
// deno-fmt-ignore
export const KVALUES_IQ4NL: Int8Array = new Int8Array([
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
]);

const fr = Math.fround;
const K = KVALUES_IQ4NL;

/** The 6-bit scale (before the -32) of sub-block ib of the IQ4_XS block at `o`. */
export function scaleIq4Xs(src: Uint8Array, o: number, ib: number): number {
  const low = (src[o + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15;
  const scalesH = src[o + 2] | (src[o + 3] << 8);
  return low | (((scalesH >> (2 * ib)) & 3) << 4);
}

export function dequantizeRowIq4Nl(
  src: Uint8Array,
  n: number,
  dst: Float32Array,
  at: number,
): void {
  const nb = n / QK4_NL;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += IQ4_NL_BYTES, k += QK4_NL) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      dst[k + j] = d * K[q & 15];
      dst[k + j + 16] = d * K[q >> 4];
    }
  }
}

export function dequantizeRowIq4Xs(
  src: Uint8Array,
  n: number,
  dst: Float32Array,
  at: number,
): void {
  const nb = n / QK_K;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += IQ4_XS_BYTES) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    for (let ib = 0; ib < 8; ib++, k += 32) {
      const dl = fr(d * (scaleIq4Xs(src, o, ib) - 32));
      const q = o + 8 + 16 * ib;
      for (let j = 0; j < 16; j++) {
        dst[k + j] = dl * K[src[q + j] & 15];
        dst[k + j + 16] = dl * K[src[q + j] >> 4];
      }
    }
  }
}

/** best_index_int8: the index of the level nearest x (the upper one on a tie). */
function bestIndex(x: number): number {
  if (x <= K[0]) return 0;
  if (x >= K[15]) return 15;
  let ml = 0, mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < K[mav]) mu = mav;
    else ml = mav;
  }
  return x - K[mu - 1] < K[mu] - x ? mu - 1 : mu;
}

// Scratch shared by every call. Like ggml's, L keeps its old levels for an
// all-zero block (its scale is 0, so what they say does not matter).
const L = new Uint8Array(QK_K);
const weight = new Float32Array(32);
const scales = new Float32Array(QK_K / 32);

/**
 * The per-32 search of quantize_row_iq4_nl_impl: levels into L[lo..lo+32),
 * returns the sub-block's scale (0 for an all-zero one, L left alone).
 */
function fitBlock(x: Float32Array, xo: number, lo: number, ntry: number): number {
  for (let j = 0; j < 32; j++) weight[j] = fr(x[xo + j] * x[xo + j]);
  const max = signedAbsMax(x, xo, 32);
  if (Math.abs(max) < GROUP_MAX_EPS) return 0;
  let d = ntry > 0 ? fr(-max / K[0]) : fr(max / K[0]);
  let id = fr(1 / d);
  let sumqx = 0, sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const xj = x[xo + j];
    const l = bestIndex(fr(id * xj));
    L[lo + j] = l;
    const q = K[l];
    const w = weight[j];
    sumqx = fr(sumqx + fr(fr(w * q) * xj));
    sumq2 = fr(sumq2 + fr(fr(w * q) * q));
  }
  d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
  let best = fr(d * sumqx);
  for (let itry = -ntry; itry <= ntry; itry++) {
    id = fr((itry + K[0]) / max);
    sumqx = sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const xj = x[xo + j];
      const q = K[bestIndex(fr(id * xj))];
      const w = weight[j];
      sumqx = fr(sumqx + fr(fr(w * q) * xj));
      sumq2 = fr(sumq2 + fr(fr(w * q) * q));
    }
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
    }
  }
  return d;
}

/** Packs L[0..n) into nibbles at dst[q..], per 32 values: j low, j+16 high. */
function packNibbles(n: number, dst: Uint8Array, q: number): void {
  for (let i = 0; i < n / 32; i++) {
    for (let j = 0; j < 16; j++) dst[q + 16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4);
  }
}

export function quantizeRowIq4Nl(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK4_NL;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK4_NL, o += IQ4_NL_BYTES) {
    // The reference quantizer runs no scale search (ntry = -1).
    putU16(dst, o, f32ToFp16(fitBlock(x, i0, 0, -1)));
    packNibbles(32, dst, o + 2);
  }
}

export function quantizeRowIq4Xs(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_K;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_K, o += IQ4_XS_BYTES) {
    for (let ib = 0; ib < 8; ib++) scales[ib] = fitBlock(x, i0 + 32 * ib, 32 * ib, 7);
    const maxScale = signedAbsMax(scales, 0, 8);
    const d = fr(-maxScale / 32);
    putU16(dst, o, f32ToFp16(d));
    const id = d !== 0 ? fr(1 / d) : 0;
    let scalesH = 0;
    for (let ib = 0; ib < 8; ib++) {
      const l = Math.max(-32, Math.min(31, nearestInt(fr(id * scales[ib]))));
      const dl = fr(d * l);
      const idl = dl !== 0 ? fr(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(fr(idl * x[i0 + 32 * ib + j]));
      const ls = l + 32;
      if (ib % 2 === 0) dst[o + 4 + (ib >> 1)] = ls & 15;
      else dst[o + 4 + (ib >> 1)] |= (ls & 15) << 4;
      scalesH |= (ls >> 4) << (2 * ib);
    }
    putU16(dst, o + 2, scalesH);
    packNibbles(QK_K, dst, o + 8);
  }
}
