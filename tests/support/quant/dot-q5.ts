/**
 * Q5_0 against Q8_0 activations and Q5_1 against Q8_1, as
 * ggml_vec_dot_q5_0_q8_0 / ggml_vec_dot_q5_1_q8_1 do: an exact integer dot
 * per 32-value block, times the two block scales; Q5_1 adds its min times
 * the activation block's `s` (f16 of d * level sum, rounded by the quantizer,
 * not recomputed). Q5_0's -16 offset comes off through the level sums.
 * matVec computes the same numbers faster; matvec-exact.test.ts and the
 * WASM tests pin it to these.
 */
import type { Activations } from "../../../inference/quant/activations.ts";
import { dotBlocks, f16At, levelSum32 } from "./dot-blocks.ts";

/** Sum over the block's 32 values of level * y, levels unsigned 0..31; qh at `qh`. */
function levelDot(w: Uint8Array, qh: number, qs: Int8Array, y: number): number {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const p = w[qh + 4 + j];
    const lo = (p & 15) | (((w[qh + (j >> 3)] >> (j & 7)) & 1) << 4);
    const hi = (p >> 4) | (((w[qh + 2 + (j >> 3)] >> (j & 7)) & 1) << 4);
    s += lo * qs[y + j] + hi * qs[y + j + 16];
  }
  return s;
}

export function dotQ5_0(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, sums16, n } = a;
  dotBlocks(rows, cols, n, 32, 22, out, (o, y, yb) => {
    const sumi = levelDot(w, o + 2, qs, y) - 16 * levelSum32(sums16, yb);
    return sumi * (f16At(w, o) * d[yb]);
  });
}

export function dotQ5_1(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, s, n } = a;
  dotBlocks(rows, cols, n, 32, 24, out, (o, y, yb) => {
    const sumi = levelDot(w, o + 4, qs, y);
    return sumi * (f16At(w, o) * d[yb]) + f16At(w, o + 2) * s[yb];
  });
}
