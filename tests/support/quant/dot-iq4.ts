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
import { KVALUES_IQ4NL, scaleIq4Xs } from "../../../inference/quant/iq4.ts";
import { e8m0Half, KVALUES_MXFP4 } from "../../../inference/quant/mxfp4.ts";
import { dotBlocks, f16At } from "./dot-blocks.ts";

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
  const { qs, d, n } = a;
  dotBlocks(rows, cols, n, 32, 18, out, (o, y, yb) => {
    const sumi = tableDot(KVALUES_IQ4NL, w, o + 2, qs, y);
    return sumi * (f16At(w, o) * d[yb]);
  });
}

export function dotMxfp4(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, n } = a;
  dotBlocks(rows, cols, n, 32, 17, out, (o, y, yb) => {
    const sumi = tableDot(KVALUES_MXFP4, w, o + 1, qs, y);
    return sumi * (e8m0Half(w[o]) * d[yb]);
  });
}

export function dotIq4Xs(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, n } = a;
  dotBlocks(rows, cols, n, 256, 136, out, (o, y, yb) => {
    let sumq = 0;
    for (let ib = 0; ib < 8; ib++) {
      sumq += (scaleIq4Xs(w, o, ib) - 32) *
        tableDot(KVALUES_IQ4NL, w, o + 8 + 16 * ib, qs, y + 32 * ib);
    }
    return f16At(w, o) * d[yb] * sumq;
  });
}
