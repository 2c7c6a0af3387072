/**
 * Q3_K (ggml-common.h `block_q3_K`): 256 values in 110 bytes:
 *   hmask[32] (third bit: value v's is bit v / 32 of hmask[v % 32]),
 *   qs[64] (low 2 bits, laid out as Q2_K's), scales[12] (sixteen 6-bit
 *   scales, offset by 32), d: f16.
 * value = d * (scale - 32) * (q - 4), q = low bits | third bit << 2.
 * Mirrors `quantize_row_q3_K_ref` / `dequantize_row_q3_K`.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { GROUP_MAX_EPS, nearestInt, signedAbsMax } from "./k-quant-search.ts";
import { QK_K } from "./q4-k.ts";

export const Q3_K_BYTES = 110;

const fr = Math.fround;

/** The 6-bit scale (0..63, before the -32) of 16-value group j from the 12 bytes at `at`. */
export function scaleQ3_K(src: Uint8Array, at: number, j: number): number {
  const low = j < 8 ? src[at + j] & 15 : src[at + j - 8] >> 4;
  return low | (((src[at + 8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4);
}

export function dequantizeRowQ3_K(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK_K;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q3_K_BYTES) {
    const dAll = FP16_TO_F32[src[o + 108] | (src[o + 109] << 8)];
    for (let half = 0, is = 0, bit = 0; half < 2; half++) {
      const q = o + 32 + 32 * half;
      for (let shift = 0; shift < 8; shift += 2, bit++) {
        for (let part = 0; part < 32; part += 16) {
          const dl = fr(dAll * (scaleQ3_K(src, o + 96, is++) - 32));
          for (let l = part; l < part + 16; l++) {
            const high = (src[o + l] >> bit) & 1;
            dst[k++] = dl * (((src[q + l] >> shift) & 3) - (high ? 0 : 4));
          }
        }
      }
    }
  }
}

/**
 * make_q3_quants with do_rmse: levels -nmax..nmax-1 stored offset by nmax in
 * `L[lo..]`, refined by up to five passes of coordinate descent. Returns the scale.
 */
function makeQ3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Int8Array,
  lo: number,
) {
  const max = signedAbsMax(x, xo, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[lo + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const w = fr(xi * xi);
      const li = L[lo + i];
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        let newL = nearestInt(fr(fr(xi * sl2) / slx));
        newL = Math.max(-nmax, Math.min(nmax - 1, newL));
        if (newL !== li) {
          slx = fr(slx + fr(fr(w * xi) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

const L = new Int8Array(QK_K);
const scales = new Float32Array(16);

export function quantizeRowQ3_K(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_K;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_K, o += Q3_K_BYTES) {
    for (let j = 0; j < 16; j++) scales[j] = makeQ3Quants(16, 4, x, i0 + 16 * j, L, 16 * j);
    const maxScale = signedAbsMax(scales, 0, 16);
    const sc = o + 96;
    dst.fill(0, sc, sc + 12);
    let dh = 0;
    if (maxScale !== 0) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        // int8_t of the nearest int, clamped to -32..31, then offset by 32.
        let l = (nearestInt(fr(iscale * scales[j])) << 24) >> 24;
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) dst[sc + j] = l & 15;
        else dst[sc + j - 8] |= (l & 15) << 4;
        dst[sc + 8 + (j & 3)] |= (l >> 4) << (2 * (j >> 2));
      }
      dh = f32ToFp16(fr(1 / iscale));
    }
    putU16(dst, o + 108, dh);
    for (let j = 0; j < 16; j++) {
      const d = fr(FP16_TO_F32[dh] * (scaleQ3_K(dst, sc, j) - 32));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(x[i0 + 16 * j + ii] / d));
        L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    dst.fill(0, o, o + 32);
    for (let j = 0; j < QK_K; j++) {
      if (L[j] > 3) {
        dst[o + (j & 31)] |= 1 << (j >> 5);
        L[j] -= 4;
      }
    }
    for (let h = 0; h < 2; h++) {
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        dst[o + 32 + 32 * h + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
          (L[j + l + 96] << 6);
      }
    }
  }
}
