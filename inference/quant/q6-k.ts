/**
 * Q6_K (ggml-common.h `block_q6_K`): 256 values in 210 bytes:
 *   ql[128] (low 4 bits), qh[64] (high 2 bits), scales: int8[16], d: f16.
 * Per 128-value half: ql[l] low/high nibbles are values l / l+64, ql[l+32]
 * values l+32 / l+96; qh[l] bits 0-1, 2-3, 4-5, 6-7 extend l, l+32, l+64, l+96.
 * value = d * scale[16-group] * (q - 32).
 * Mirrors `quantize_row_q6_K_ref` / `dequantize_row_q6_K`.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { GROUP_MAX_EPS, makeQxQuants, nearestInt, signedAbsMax } from "./k-quant-search.ts";
import { QK_K } from "./q4-k.ts";

export const Q6_K_BYTES = 210;

const fr = Math.fround;

export function dequantizeRowQ6_K(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK_K;
  for (let b = 0, o = 0; b < nb; b++, o += Q6_K_BYTES) {
    const d = FP16_TO_F32[src[o + 208] | (src[o + 209] << 8)];
    for (let half = 0; half < 2; half++) {
      const ql = o + 64 * half;
      const qh = o + 128 + 32 * half;
      const sc = o + 192 + 8 * half;
      const k = at + b * QK_K + 128 * half;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        dst[k + l] = fr(d * ((src[sc + is] << 24) >> 24)) * q1;
        dst[k + l + 32] = fr(d * ((src[sc + is + 2] << 24) >> 24)) * q2;
        dst[k + l + 64] = fr(d * ((src[sc + is + 4] << 24) >> 24)) * q3;
        dst[k + l + 96] = fr(d * ((src[sc + is + 6] << 24) >> 24)) * q4;
      }
    }
  }
}

const L = new Uint8Array(QK_K);
const scales = new Float32Array(16);

export function quantizeRowQ6_K(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_K;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_K, o += Q6_K_BYTES) {
    for (let ib = 0; ib < 16; ib++) scales[ib] = makeQxQuants(16, 32, x, i0 + 16 * ib, L, 16 * ib);
    const maxScale = signedAbsMax(scales, 0, 16);
    if (Math.abs(maxScale) < GROUP_MAX_EPS) {
      dst.fill(0, o, o + Q6_K_BYTES);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const dh = f32ToFp16(fr(1 / iscale));
    putU16(dst, o + 208, dh);
    const dAll = FP16_TO_F32[dh];
    for (let ib = 0; ib < 16; ib++) {
      const s = Math.min(127, nearestInt(fr(iscale * scales[ib])));
      dst[o + 192 + ib] = s & 0xff;
      const d = fr(dAll * ((s << 24) >> 24));
      if (d === 0) continue; // keeps the levels make_qx_quants chose, as ggml does
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(x[i0 + 16 * ib + ii] / d));
        L[16 * ib + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let half = 0; half < 2; half++) {
      const ql = o + 64 * half;
      const qh = o + 128 + 32 * half;
      const j = 128 * half;
      for (let l = 0; l < 32; l++) {
        const a = L[j + l];
        const b2 = L[j + l + 32];
        const c = L[j + l + 64];
        const e = L[j + l + 96];
        dst[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
        dst[ql + l + 32] = (b2 & 0xf) | ((e & 0xf) << 4);
        dst[qh + l] = (a >> 4) | ((b2 >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
}
