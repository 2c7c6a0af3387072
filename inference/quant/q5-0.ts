/**
 * Q5_0 and Q5_1 (ggml-common.h `block_q5_0`, `block_q5_1`): 32 values per
 * block, nibbles as Q4_0 (byte j holds value j low, j+16 high) plus a fifth
 * bit per value in the little-endian u32 `qh` (bit j for value j).
 *   Q5_0, 22 bytes: d: f16, qh[4], qs[16]; value = (q - 16) * d.
 *   Q5_1, 24 bytes: d: f16, m: f16, qh[4], qs[16]; value = q * d + m.
 * Mirrors `quantize_row_q5_{0,1}_ref` / `dequantize_row_q5_{0,1}` in f32.
 */
import { f32ToFp16, FP16_TO_F32, putU16 } from "./fp16.ts";
import { signedAbsMax } from "./k-quant-search.ts";

export const QK5 = 32;
export const Q5_0_BYTES = 22;
export const Q5_1_BYTES = 24;

const fr = Math.fround;

/** The 5-bit level of value j (0..31) of the block whose qh starts at `qh`. */
function level(src: Uint8Array, qh: number, j: number): number {
  const q = src[qh + 4 + (j & 15)];
  const nib = j < 16 ? q & 15 : q >> 4;
  return nib | (((src[qh + (j >> 3)] >> (j & 7)) & 1) << 4);
}

export function dequantizeRowQ5_0(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK5;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q5_0_BYTES, k += QK5) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    for (let j = 0; j < QK5; j++) dst[k + j] = (level(src, o + 2, j) - 16) * d;
  }
}

export function dequantizeRowQ5_1(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  const nb = n / QK5;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += Q5_1_BYTES, k += QK5) {
    const d = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
    const m = FP16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
    for (let j = 0; j < QK5; j++) dst[k + j] = fr(level(src, o + 4, j) * d) + m;
  }
}

/** Writes 32 levels (0..31) as qh (4 bytes) then qs (16 bytes) at `dst[o..]`. */
function packLevels(levels: Uint8Array, dst: Uint8Array, o: number): void {
  for (let i = 0; i < 4; i++) dst[o + i] = 0;
  for (let j = 0; j < 16; j++) {
    const a = levels[j], e = levels[j + 16];
    dst[o + 4 + j] = (a & 15) | ((e & 15) << 4);
    dst[o + (j >> 3)] |= (a >> 4) << (j & 7);
    dst[o + 2 + (j >> 3)] |= (e >> 4) << (j & 7);
  }
}

const L = new Uint8Array(QK5);

export function quantizeRowQ5_0(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK5;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK5, o += Q5_0_BYTES) {
    // The signed value of largest magnitude (first one wins) maps to -16.
    const max = signedAbsMax(x, i0, QK5);
    const d = fr(max / -16);
    const id = d !== 0 ? fr(1 / d) : 0;
    putU16(dst, o, f32ToFp16(d));
    // ggml truncates (int8_t)(v + 16.5f) rather than rounding: keep that.
    for (let j = 0; j < QK5; j++) L[j] = Math.min(31, Math.trunc(fr(fr(x[i0 + j] * id) + 16.5)));
    packLevels(L, dst, o + 2);
  }
}

export function quantizeRowQ5_1(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK5;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK5, o += Q5_1_BYTES) {
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < QK5; j++) {
      const v = x[i0 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d !== 0 ? fr(1 / d) : 0;
    putU16(dst, o, f32ToFp16(d));
    putU16(dst, o + 2, f32ToFp16(min));
    // (uint8_t)(v + 0.5f): truncation, and the byte keeps only its low bits.
    for (let j = 0; j < QK5; j++) {
      L[j] = Math.trunc(fr(fr(fr(x[i0 + j] - min) * id) + 0.5)) & 0xff;
    }
    packLevels(L, dst, o + 4);
  }
}
