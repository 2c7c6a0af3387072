/**
 * Row decoders into f64 (see decode-f64.ts) for the types added in issue 15.
 * Every value is kept unrounded: a scale product times a level, exact in f64.
 * `decodeQ5_1` writes q * d + m; matvec.ts takes the Q5_1 min apart for Q8_1
 * activations (ggml multiplies it by the activation block's rounded `s`).
 */
import { FP16_TO_F32 } from "./fp16.ts";
import { KVALUES_IQ4NL, scaleIq4Xs } from "./iq4.ts";
import { e8m0Half, KVALUES_MXFP4 } from "./mxfp4.ts";
import { scaleQ3_K } from "./q3-k.ts";

const F16 = FP16_TO_F32;

/** Levels 0..31 of the Q5 block whose qh starts at `qh`, times d, plus m. */
function q5Block(w: Uint8Array, qh: number, d: number, m: number, dst: Float64Array, k: number) {
  for (let j = 0; j < 16; j++) {
    const p = w[qh + 4 + j];
    dst[k + j] = d * ((p & 15) | (((w[qh + (j >> 3)] >> (j & 7)) & 1) << 4)) + m;
    dst[k + j + 16] = d * ((p >> 4) | (((w[qh + 2 + (j >> 3)] >> (j & 7)) & 1) << 4)) + m;
  }
}

export function decodeQ5_0(
  w: Uint8Array,
  _ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) {
  for (let k = 0; k < cols; k += 32, o += 22) {
    const d = F16[w[o] | (w[o + 1] << 8)];
    q5Block(w, o + 2, d, -16 * d, dst, k);
  }
}

/** Q5_1 with (`withMin`) or without its min. */
export function decodeQ5_1(
  w: Uint8Array,
  o: number,
  cols: number,
  dst: Float64Array,
  withMin: boolean,
): void {
  for (let k = 0; k < cols; k += 32, o += 24) {
    const m = withMin ? F16[w[o + 2] | (w[o + 3] << 8)] : 0;
    q5Block(w, o + 4, F16[w[o] | (w[o + 1] << 8)], m, dst, k);
  }
}

function tableBlock(
  t: Int8Array,
  w: Uint8Array,
  q: number,
  d: number,
  dst: Float64Array,
  k: number,
) {
  for (let j = 0; j < 16; j++) {
    dst[k + j] = d * t[w[q + j] & 15];
    dst[k + j + 16] = d * t[w[q + j] >> 4];
  }
}

export function decodeIq4Nl(
  w: Uint8Array,
  _ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) {
  for (let k = 0; k < cols; k += 32, o += 18) {
    tableBlock(KVALUES_IQ4NL, w, o + 2, F16[w[o] | (w[o + 1] << 8)], dst, k);
  }
}

export function decodeMxfp4(
  w: Uint8Array,
  _ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) {
  for (let k = 0; k < cols; k += 32, o += 17) {
    tableBlock(KVALUES_MXFP4, w, o + 1, e8m0Half(w[o]), dst, k);
  }
}

export function decodeIq4Xs(
  w: Uint8Array,
  _ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) {
  for (let k = 0; k < cols; k += 256, o += 136) {
    const d = F16[w[o] | (w[o + 1] << 8)];
    for (let ib = 0; ib < 8; ib++) {
      tableBlock(
        KVALUES_IQ4NL,
        w,
        o + 8 + 16 * ib,
        d * (scaleIq4Xs(w, o, ib) - 32),
        dst,
        k + 32 * ib,
      );
    }
  }
}

export function decodeQ2_K(
  w: Uint8Array,
  _ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) {
  for (let k = 0; k < cols; k += 256, o += 84) {
    const d = F16[w[o + 80] | (w[o + 81] << 8)];
    const dmin = F16[w[o + 82] | (w[o + 83] << 8)];
    for (let g = 0; g < 16; g++) {
      const shift = 2 * ((g >> 1) & 3), q = o + 16 + 32 * (g >> 3) + 16 * (g & 1);
      const dl = d * (w[o + g] & 15), ml = dmin * (w[o + g] >> 4);
      for (let l = 0, kg = k + 16 * g; l < 16; l++) {
        dst[kg + l] = dl * ((w[q + l] >> shift) & 3) - ml;
      }
    }
  }
}

export function decodeQ3_K(
  w: Uint8Array,
  _ws: Int8Array,
  o: number,
  cols: number,
  dst: Float64Array,
) {
  for (let k = 0; k < cols; k += 256, o += 110) {
    const d = F16[w[o + 108] | (w[o + 109] << 8)];
    for (let g = 0; g < 16; g++) {
      const shift = 2 * ((g >> 1) & 3), part = 16 * (g & 1), bit = g >> 1;
      const q = o + 32 + 32 * (g >> 3) + part;
      const dl = d * (scaleQ3_K(w, o + 96, g) - 32);
      for (let l = 0, kg = k + 16 * g; l < 16; l++) {
        const level = ((w[q + l] >> shift) & 3) | (((w[o + part + l] >> bit) & 1) << 2);
        dst[kg + l] = dl * (level - 4);
      }
    }
  }
}
