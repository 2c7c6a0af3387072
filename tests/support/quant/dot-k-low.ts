/**
 * Q2_K and Q3_K against Q8_K activations, as ggml_vec_dot_q2_K_q8_K /
 * _q3_K_q8_K do: per 256-value super-block an exact integer sum over its
 * sixteen 16-value groups of scale * (level dot activation levels), times
 * the f16 weight scale and the f32 activation scale. Q2_K's mins enter
 * through the activation level sums (`bsums`); Q3_K's levels are q - 4
 * (q = two low bits | the hmask bit << 2), its scales 6-bit - 32.
 * matVec computes the same numbers faster; matvec-exact.test.ts and the WASM
 * tests pin it to these.
 */
import type { Activations } from "../../../inference/quant/activations.ts";
import { scaleQ3_K } from "../../../inference/quant/q3-k.ts";
import { dotBlocks, f16At } from "./dot-blocks.ts";

export function dotQ2_K(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, sums16, n } = a;
  dotBlocks(rows, cols, n, 256, 84, out, (o, y, yb) => {
    let sumq = 0;
    let summ = 0;
    // Group g (16 values, in value order) has scale byte g.
    for (let g = 0; g < 16; g++) {
      const half = g >> 3, shift = 2 * ((g >> 1) & 3), q = o + 16 + 32 * half + 16 * (g & 1);
      const yg = y + 16 * g;
      let s = 0;
      for (let l = 0; l < 16; l++) s += ((w[q + l] >> shift) & 3) * qs[yg + l];
      sumq += (w[o + g] & 15) * s;
      summ += (w[o + g] >> 4) * sums16[yg >> 4];
    }
    const dy = d[yb];
    return f16At(w, o + 80) * dy * sumq - f16At(w, o + 82) * dy * summ;
  });
}

export function dotQ3_K(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, n } = a;
  dotBlocks(rows, cols, n, 256, 110, out, (o, y, yb) => {
    let sumq = 0;
    for (let g = 0; g < 16; g++) {
      const half = g >> 3, shift = 2 * ((g >> 1) & 3), part = 16 * (g & 1);
      const q = o + 32 + 32 * half + part;
      const bit = g >> 1; // value v's third bit is bit v / 32 of hmask[v % 32]
      const yg = y + 16 * g;
      let s = 0;
      for (let l = 0; l < 16; l++) {
        const level = ((w[q + l] >> shift) & 3) | (((w[o + part + l] >> bit) & 1) << 2);
        s += (level - 4) * qs[yg + l];
      }
      sumq += (scaleQ3_K(w, o + 96, g) - 32) * s;
    }
    return f16At(w, o + 108) * d[yb] * sumq;
  });
}
