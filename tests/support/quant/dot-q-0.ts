/**
 * Q8_0 and Q4_0 weights against Q8_0 activations, as ggml_vec_dot_q8_0_q8_0
 * and ggml_vec_dot_q4_0_q8_0 do: an exact integer dot per 32-value block,
 * scaled by the two f16 block scales. Q4_0 dots the unsigned nibbles and
 * removes the -8 offset through the activation block's level sum, which gives
 * the same integer as ggml's (q - 8) * y. Every weight row is dotted with all
 * `a.n` vectors while it is still in cache.
 * matVec computes the same numbers faster (inference/quant/matvec-f64.ts);
 * this is the reference its tests (matvec-exact.test.ts) pin it to.
 */
import type { Activations } from "../../../inference/quant/activations.ts";
import { dotBlocks, f16At, levelSum32 } from "./dot-blocks.ts";

export function dotQ8_0(
  w: Uint8Array,
  ws: Int8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, n } = a;
  dotBlocks(rows, cols, n, 32, 34, out, (o, y, yb) => {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let j = 0, q = o + 2; j < 32; j += 4, q += 4) {
      s0 = (s0 + Math.imul(ws[q], qs[y + j])) | 0;
      s1 = (s1 + Math.imul(ws[q + 1], qs[y + j + 1])) | 0;
      s2 = (s2 + Math.imul(ws[q + 2], qs[y + j + 2])) | 0;
      s3 = (s3 + Math.imul(ws[q + 3], qs[y + j + 3])) | 0;
    }
    return (s0 + s1 + s2 + s3) * (f16At(w, o) * d[yb]);
  });
}

export function dotQ4_0(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, sums16, n } = a;
  dotBlocks(rows, cols, n, 32, 18, out, (o, y, yb) => {
    let s0 = 0, s1 = 0;
    for (let j = 0, q = o + 2; j < 16; j += 2, q += 2) {
      const p = w[q];
      const e = w[q + 1];
      s0 = (s0 + Math.imul(p & 15, qs[y + j]) + Math.imul(p >> 4, qs[y + j + 16])) | 0;
      s1 = (s1 + Math.imul(e & 15, qs[y + j + 1]) + Math.imul(e >> 4, qs[y + j + 17])) | 0;
    }
    const sumi = s0 + s1 - 8 * levelSum32(sums16, yb);
    return sumi * (f16At(w, o) * d[yb]);
  });
}
