/**
 * The table-level types: IQ4_NL and MXFP4 against Q8_0 activations, IQ4_XS
 * against Q8_K, as ggml_vec_dot_iq4_nl_q8_0 / _mxfp4_q8_0 / _iq4_xs_q8_K do:
 * each 4-bit index picks an int8 level (kvalues_iq4nl, or MXFP4's doubled
 * E2M1 values), dotted exactly with the activation levels per 32 values;
 * IQ4_XS weighs each 32 by its 6-bit scale - 32 and sums the super-block in
 * integers. Then times the weight and activation scales, in block order.
 * matVec computes the same numbers faster; matvec-exact.test.ts and the WASM
 * tests pin it to these.
 */
import type { Activations } from "../../../inference/quant/activations.ts";
import { FP16_TO_F32 } from "../../../inference/quant/fp16.ts";
import { KVALUES_IQ4NL, scaleIq4Xs } from "../../../inference/quant/iq4.ts";
import { e8m0Half, KVALUES_MXFP4 } from "../../../inference/quant/mxfp4.ts";

const F16 = FP16_TO_F32;

/** Sum of table[index] * y over 32 values whose 16 nibble bytes start at `q`. */
function tableDot(table: Int8Array, w: Uint8Array, q: number, qs: Int8Array, y: number): number {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    s += table[w[q + j] & 15] * qs[y + j] + table[w[q + j] >> 4] * qs[y + j + 16];
  }
  return s;
}

export function dotIq4Nl(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const nb = cols >> 5;
  const rb = nb * 18;
  const { qs, d, n } = a;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < n; v++) {
      let acc = 0;
      for (let b = 0, o = r * rb, y = v * cols, yb = v * nb; b < nb; b++, o += 18, y += 32, yb++) {
        const sumi = tableDot(KVALUES_IQ4NL, w, o + 2, qs, y);
        acc += sumi * (F16[w[o] | (w[o + 1] << 8)] * d[yb]);
      }
      out[v * rows + r] = acc;
    }
  }
}

export function dotMxfp4(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const nb = cols >> 5;
  const rb = nb * 17;
  const { qs, d, n } = a;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < n; v++) {
      let acc = 0;
      for (let b = 0, o = r * rb, y = v * cols, yb = v * nb; b < nb; b++, o += 17, y += 32, yb++) {
        const sumi = tableDot(KVALUES_MXFP4, w, o + 1, qs, y);
        acc += sumi * (e8m0Half(w[o]) * d[yb]);
      }
      out[v * rows + r] = acc;
    }
  }
}

export function dotIq4Xs(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const nb = cols >> 8;
  const rb = nb * 136;
  const { qs, d, n } = a;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < n; v++) {
      let acc = 0;
      for (
        let b = 0, o = r * rb, y = v * cols, yb = v * nb;
        b < nb;
        b++, o += 136, y += 256, yb++
      ) {
        let sumq = 0;
        for (let ib = 0; ib < 8; ib++) {
          sumq += (scaleIq4Xs(w, o, ib) - 32) *
            tableDot(KVALUES_IQ4NL, w, o + 8 + 16 * ib, qs, y + 32 * ib);
        }
        acc += F16[w[o] | (w[o + 1] << 8)] * d[yb] * sumq;
      }
      out[v * rows + r] = acc;
    }
  }
}
