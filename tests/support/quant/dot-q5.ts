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
import { FP16_TO_F32 } from "../../../inference/quant/fp16.ts";

const F16 = FP16_TO_F32;

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
  const nb = cols >> 5;
  const rb = nb * 22;
  const { qs, d, sums16, n } = a;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < n; v++) {
      let acc = 0;
      for (let b = 0, o = r * rb, y = v * cols, yb = v * nb; b < nb; b++, o += 22, y += 32, yb++) {
        const sumi = levelDot(w, o + 2, qs, y) - 16 * (sums16[2 * yb] + sums16[2 * yb + 1]);
        acc += sumi * (F16[w[o] | (w[o + 1] << 8)] * d[yb]);
      }
      out[v * rows + r] = acc;
    }
  }
}

export function dotQ5_1(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const nb = cols >> 5;
  const rb = nb * 24;
  const { qs, d, s, n } = a;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < n; v++) {
      let acc = 0;
      for (let b = 0, o = r * rb, y = v * cols, yb = v * nb; b < nb; b++, o += 24, y += 32, yb++) {
        const sumi = levelDot(w, o + 4, qs, y);
        acc += sumi * (F16[w[o] | (w[o + 1] << 8)] * d[yb]) +
          F16[w[o + 2] | (w[o + 3] << 8)] * s[yb];
      }
      out[v * rows + r] = acc;
    }
  }
}
