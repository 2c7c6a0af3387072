/**
 * K-quant weights against Q8_K activations, as ggml_vec_dot_q{4,5,6}_K_q8_K
 * do: per 256-value super-block an exact integer sum of scale * (level dot
 * activation levels), times the f16 weight scale and the f32 activation
 * scale. Q4_K/Q5_K mins enter through the activation level sums (`bsums`),
 * and Q6_K's -32 offset likewise, so quants are dotted as unsigned levels.
 * Every weight row is dotted with all `a.n` vectors while it is in cache.
 * matVec computes the same numbers faster (inference/quant/matvec-f64.ts);
 * this is the reference its tests (matvec-exact.test.ts) pin it to.
 */
import type { Activations } from "../../../inference/quant/activations.ts";
import { dotBlocks, f16At } from "./dot-blocks.ts";

/** get_scale_min_k4: 6-bit scale (which = 0) or min (which = 4) of sub-block j. */
function scaleMin(w: Uint8Array, o: number, j: number, which: 0 | 4): number {
  if (j < 4) return w[o + 4 + which + j] & 63;
  return which === 0
    ? (w[o + 8 + j] & 15) | ((w[o + j] >> 6) << 4)
    : (w[o + 8 + j] >> 4) | ((w[o + 4 + j] >> 6) << 4);
}

/** Sub-blocks 2c and 2c + 1's mins times their activation level sums (from 16-value group g). */
function minSum(w: Uint8Array, o: number, c: number, sums16: Int32Array, g: number): number {
  return scaleMin(w, o, 2 * c, 4) * (sums16[g] + sums16[g + 1]) +
    scaleMin(w, o, 2 * c + 1, 4) * (sums16[g + 2] + sums16[g + 3]);
}

export function dotQ4_K(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, sums16, n } = a;
  dotBlocks(rows, cols, n, 256, 144, out, (o, y, yb) => {
    let sumq = 0;
    let summ = 0;
    for (let c = 0; c < 4; c++) {
      const q = o + 16 + 32 * c;
      const yc = y + 64 * c;
      let lo0 = 0, lo1 = 0, hi0 = 0, hi1 = 0;
      for (let l = 0; l < 32; l += 2) {
        const p = w[q + l];
        const e = w[q + l + 1];
        lo0 += (p & 15) * qs[yc + l];
        lo1 += (e & 15) * qs[yc + l + 1];
        hi0 += (p >> 4) * qs[yc + l + 32];
        hi1 += (e >> 4) * qs[yc + l + 33];
      }
      sumq += scaleMin(w, o, 2 * c, 0) * (lo0 + lo1) +
        scaleMin(w, o, 2 * c + 1, 0) * (hi0 + hi1);
      summ += minSum(w, o, c, sums16, yc >> 4);
    }
    const dy = d[yb];
    return f16At(w, o) * dy * sumq - f16At(w, o + 2) * dy * summ;
  });
}

export function dotQ5_K(
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, sums16, n } = a;
  dotBlocks(rows, cols, n, 256, 176, out, (o, y, yb) => {
    let sumq = 0;
    let summ = 0;
    const qh = o + 16;
    for (let c = 0; c < 4; c++) {
      const q = o + 48 + 32 * c;
      const yc = y + 64 * c;
      const sh = 2 * c;
      let lo = 0, hi = 0;
      for (let l = 0; l < 32; l++) {
        const p = w[q + l];
        const h = w[qh + l] >> sh;
        lo += ((p & 15) | ((h & 1) << 4)) * qs[yc + l];
        hi += ((p >> 4) | ((h & 2) << 3)) * qs[yc + l + 32];
      }
      sumq += scaleMin(w, o, 2 * c, 0) * lo + scaleMin(w, o, 2 * c + 1, 0) * hi;
      summ += minSum(w, o, c, sums16, yc >> 4);
    }
    const dy = d[yb];
    return f16At(w, o) * dy * sumq - f16At(w, o + 2) * dy * summ;
  });
}

export function dotQ6_K(
  w: Uint8Array,
  ws: Int8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const { qs, d, sums16, n } = a;
  dotBlocks(rows, cols, n, 256, 210, out, (o, y, yb) => {
    let sum = 0;
    for (let half = 0; half < 2; half++) {
      const ql = o + 64 * half;
      const qh = o + 128 + 32 * half;
      const sc = o + 192 + 8 * half;
      const yh = y + 128 * half;
      // 16-value groups: l in [0,16) uses scales is=0, [16,32) is=1 (+2, +4, +6 per quarter).
      for (let g = 0; g < 2; g++) {
        let s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        for (let l = 16 * g, end = l + 16; l < end; l++) {
          const p = w[ql + l];
          const e = w[ql + l + 32];
          const h = w[qh + l];
          s1 += ((p & 15) | ((h & 3) << 4)) * qs[yh + l];
          s2 += ((e & 15) | ((h & 12) << 2)) * qs[yh + l + 32];
          s3 += ((p >> 4) | (h & 48)) * qs[yh + l + 64];
          s4 += ((e >> 4) | ((h & 192) >> 2)) * qs[yh + l + 96];
        }
        const ys = (yh >> 4) + g;
        sum += ws[sc + g] * (s1 - 32 * sums16[ys]) +
          ws[sc + g + 2] * (s2 - 32 * sums16[ys + 2]) +
          ws[sc + g + 4] * (s3 - 32 * sums16[ys + 4]) +
          ws[sc + g + 6] * (s4 - 32 * sums16[ys + 6]);
      }
    }
    return f16At(w, o + 208) * d[yb] * sum;
  });
}
