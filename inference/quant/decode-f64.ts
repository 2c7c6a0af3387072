/**
 * Weight rows decoded into f64 for the batched product (matvec.ts): unlike
 * the codecs' f32 dequantizers, d * scale * q - dmin * m is kept unrounded
 * (at most ~25 significant bits, exact in f64), so dotting a decoded row with
 * decoded activations gives the integer block dot up to f64 rounding.
 */
import { GgmlType, type QuantWeightType } from "../ggml-type.ts";
import { FP16_TO_F32 } from "./fp16.ts";
import {
  decodeIq4Nl,
  decodeIq4Xs,
  decodeMxfp4,
  decodeQ2_K,
  decodeQ3_K,
  decodeQ5_0,
  decodeQ5_1,
} from "./decode-f64-new.ts";

const F16 = FP16_TO_F32;

/**
 * Writes the `cols` values of the row starting at byte `o` of `w` (`ws`: the
 * same bytes as int8) into `dst[0..cols)`.
 */
export type RowDecoderF64 = (
  w: Uint8Array,
  ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) => void;

/** The row decoder of each block-quantized type. */
export const DECODE_ROW_F64: Record<QuantWeightType, RowDecoderF64> = {
  [GgmlType.Q8_0]: decodeQ8_0,
  [GgmlType.Q4_0]: decodeQ4_0,
  [GgmlType.Q4_K]: decodeQ4_K,
  [GgmlType.Q5_K]: decodeQ5_K,
  [GgmlType.Q6_K]: decodeQ6_K,
  [GgmlType.Q5_0]: decodeQ5_0,
  [GgmlType.Q5_1]: (w, _ws, o, cols, dst) => decodeQ5_1(w, o, cols, dst, true),
  [GgmlType.Q2_K]: decodeQ2_K,
  [GgmlType.Q3_K]: decodeQ3_K,
  [GgmlType.IQ4_NL]: decodeIq4Nl,
  [GgmlType.IQ4_XS]: decodeIq4Xs,
  [GgmlType.MXFP4]: decodeMxfp4,
};

function decodeQ8_0(w: Uint8Array, ws: Int8Array, o: number, cols: number, dst: Float64Array) {
  for (let k = 0; k < cols; k += 32, o += 34) {
    const d = F16[w[o] | (w[o + 1] << 8)];
    for (let j = 0; j < 32; j++) dst[k + j] = d * ws[o + 2 + j];
  }
}

function decodeQ4_0(w: Uint8Array, _ws: Int8Array, o: number, cols: number, dst: Float64Array) {
  for (let k = 0; k < cols; k += 32, o += 18) {
    const d = F16[w[o] | (w[o + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const p = w[o + 2 + j];
      dst[k + j] = d * ((p & 15) - 8);
      dst[k + j + 16] = d * ((p >> 4) - 8);
    }
  }
}

/** get_scale_min_k4 for sub-block j of the super-block at `o`: scale, or min when `m` is 4. */
function scaleMin(w: Uint8Array, o: number, j: number, m: 0 | 4): number {
  if (j < 4) return w[o + 4 + m + j] & 63;
  return m === 0
    ? (w[o + 8 + j] & 15) | ((w[o + j] >> 6) << 4)
    : (w[o + 8 + j] >> 4) | ((w[o + 4 + j] >> 6) << 4);
}

function decodeQ4_K(w: Uint8Array, _ws: Int8Array, o: number, cols: number, dst: Float64Array) {
  for (let k = 0; k < cols; k += 256, o += 144) {
    const d = F16[w[o] | (w[o + 1] << 8)];
    const dmin = F16[w[o + 2] | (w[o + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const d1 = d * scaleMin(w, o, 2 * c, 0), m1 = dmin * scaleMin(w, o, 2 * c, 4);
      const d2 = d * scaleMin(w, o, 2 * c + 1, 0), m2 = dmin * scaleMin(w, o, 2 * c + 1, 4);
      const q = o + 16 + 32 * c;
      const kc = k + 64 * c;
      for (let l = 0; l < 32; l++) {
        const p = w[q + l];
        dst[kc + l] = d1 * (p & 15) - m1;
        dst[kc + l + 32] = d2 * (p >> 4) - m2;
      }
    }
  }
}

function decodeQ5_K(w: Uint8Array, _ws: Int8Array, o: number, cols: number, dst: Float64Array) {
  for (let k = 0; k < cols; k += 256, o += 176) {
    const d = F16[w[o] | (w[o + 1] << 8)];
    const dmin = F16[w[o + 2] | (w[o + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const d1 = d * scaleMin(w, o, 2 * c, 0), m1 = dmin * scaleMin(w, o, 2 * c, 4);
      const d2 = d * scaleMin(w, o, 2 * c + 1, 0), m2 = dmin * scaleMin(w, o, 2 * c + 1, 4);
      const q = o + 48 + 32 * c;
      const kc = k + 64 * c;
      const sh = 2 * c;
      for (let l = 0; l < 32; l++) {
        const p = w[q + l];
        const h = w[o + 16 + l] >> sh;
        dst[kc + l] = d1 * ((p & 15) | ((h & 1) << 4)) - m1;
        dst[kc + l + 32] = d2 * ((p >> 4) | ((h & 2) << 3)) - m2;
      }
    }
  }
}

function decodeQ6_K(w: Uint8Array, ws: Int8Array, o: number, cols: number, dst: Float64Array) {
  for (let k = 0; k < cols; k += 256, o += 210) {
    const d = F16[w[o + 208] | (w[o + 209] << 8)];
    for (let half = 0; half < 2; half++) {
      const ql = o + 64 * half;
      const qh = o + 128 + 32 * half;
      const sc = o + 192 + 8 * half;
      const kh = k + 128 * half;
      for (let l = 0; l < 32; l++) {
        const is = sc + (l >> 4);
        const a = w[ql + l];
        const e = w[ql + l + 32];
        const h = w[qh + l];
        dst[kh + l] = d * ws[is] * (((a & 15) | ((h & 3) << 4)) - 32);
        dst[kh + l + 32] = d * ws[is + 2] * (((e & 15) | ((h & 12) << 2)) - 32);
        dst[kh + l + 64] = d * ws[is + 4] * (((a >> 4) | (h & 48)) - 32);
        dst[kh + l + 96] = d * ws[is + 6] * (((e >> 4) | ((h & 192) >> 2)) - 32);
      }
    }
  }
}
