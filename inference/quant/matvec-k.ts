/**
 * Fused matrix-vector kernels for the K-quants (256-value super-blocks).
 * Each sub-block's quants are dotted with x as unsigned levels; the offsets
 * (Q4_K/Q5_K mins, Q6_K's -32) are applied once per sub-block through the
 * precomputed sums of x over 32 (`xsum32`) or 16 (`xsum16`) values. x is f64
 * so that decoded Q8_K activations (q * d, up to 32 bits) enter unrounded.
 */
import { FP16_TO_F32 } from "./fp16.ts";

const F16 = FP16_TO_F32;

/** get_scale_min_k4: 6-bit scale of sub-block j of the super-block at `o`. */
function scaleK4(w: Uint8Array, o: number, j: number): number {
  return j < 4 ? w[o + 4 + j] & 63 : (w[o + 8 + j] & 15) | ((w[o + j] >> 6) << 4);
}

/** Sum over the 8 sub-blocks of min_j * xsum32[g + j] (get_scale_min_k4's mins). */
function minDotK4(w: Uint8Array, o: number, xsum32: Float64Array, g: number): number {
  let s = 0;
  for (let j = 0; j < 4; j++) s += (w[o + 8 + j] & 63) * xsum32[g + j];
  for (let j = 4; j < 8; j++) {
    s += ((w[o + 8 + j] >> 4) | ((w[o + 4 + j] >> 6) << 4)) * xsum32[g + j];
  }
  return s;
}

export function matVecQ4_K(
  w: Uint8Array,
  rows: number,
  cols: number,
  x: Float64Array,
  xsum32: Float64Array,
  out: Float32Array,
): void {
  const nb = cols >> 8;
  const rb = nb * 144;
  const rows4 = rows & ~3;
  // Four rows at a time share each load of x (as matVecQ4_0 does).
  for (let r = 0; r < rows4; r += 4) {
    let acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    for (let b = 0, o0 = r * rb, xb = 0; b < nb; b++, o0 += 144, xb += 256) {
      const o1 = o0 + rb, o2 = o1 + rb, o3 = o2 + rb;
      let q0 = 0, q1 = 0, q2 = 0, q3 = 0;
      for (let c = 0; c < 4; c++) {
        const xc = xb + 64 * c;
        const k = 16 + 32 * c;
        let lo0 = 0, lo1 = 0, lo2 = 0, lo3 = 0, hi0 = 0, hi1 = 0, hi2 = 0, hi3 = 0;
        for (let l = 0; l < 32; l++) {
          const xl = x[xc + l];
          const xh = x[xc + l + 32];
          const p0 = w[o0 + k + l], p1 = w[o1 + k + l], p2 = w[o2 + k + l], p3 = w[o3 + k + l];
          lo0 += (p0 & 15) * xl;
          hi0 += (p0 >> 4) * xh;
          lo1 += (p1 & 15) * xl;
          hi1 += (p1 >> 4) * xh;
          lo2 += (p2 & 15) * xl;
          hi2 += (p2 >> 4) * xh;
          lo3 += (p3 & 15) * xl;
          hi3 += (p3 >> 4) * xh;
        }
        const j = 2 * c;
        q0 += scaleK4(w, o0, j) * lo0 + scaleK4(w, o0, j + 1) * hi0;
        q1 += scaleK4(w, o1, j) * lo1 + scaleK4(w, o1, j + 1) * hi1;
        q2 += scaleK4(w, o2, j) * lo2 + scaleK4(w, o2, j + 1) * hi2;
        q3 += scaleK4(w, o3, j) * lo3 + scaleK4(w, o3, j + 1) * hi3;
      }
      const g = xb >> 5;
      acc0 += F16[w[o0] | (w[o0 + 1] << 8)] * q0 -
        F16[w[o0 + 2] | (w[o0 + 3] << 8)] * minDotK4(w, o0, xsum32, g);
      acc1 += F16[w[o1] | (w[o1 + 1] << 8)] * q1 -
        F16[w[o1 + 2] | (w[o1 + 3] << 8)] * minDotK4(w, o1, xsum32, g);
      acc2 += F16[w[o2] | (w[o2 + 1] << 8)] * q2 -
        F16[w[o2 + 2] | (w[o2 + 3] << 8)] * minDotK4(w, o2, xsum32, g);
      acc3 += F16[w[o3] | (w[o3 + 1] << 8)] * q3 -
        F16[w[o3 + 2] | (w[o3 + 3] << 8)] * minDotK4(w, o3, xsum32, g);
    }
    out[r] = acc0;
    out[r + 1] = acc1;
    out[r + 2] = acc2;
    out[r + 3] = acc3;
  }
  for (let r = rows4, o = rows4 * rb; r < rows; r++) {
    let acc = 0;
    for (let b = 0, xb = 0; b < nb; b++, o += 144, xb += 256) {
      const d = F16[w[o] | (w[o + 1] << 8)];
      const dmin = F16[w[o + 2] | (w[o + 3] << 8)];
      let sumq = 0;
      let summ = 0;
      for (let c = 0; c < 4; c++) {
        // get_scale_min_k4 for sub-blocks 2c and 2c+1, inlined.
        const j0 = 2 * c;
        const j1 = j0 + 1;
        const sc0 = j0 < 4 ? w[o + 4 + j0] & 63 : (w[o + 8 + j0] & 15) | ((w[o + j0] >> 6) << 4);
        const m0 = j0 < 4 ? w[o + 8 + j0] & 63 : (w[o + 8 + j0] >> 4) | ((w[o + 4 + j0] >> 6) << 4);
        const sc1 = j1 < 4 ? w[o + 4 + j1] & 63 : (w[o + 8 + j1] & 15) | ((w[o + j1] >> 6) << 4);
        const m1 = j1 < 4 ? w[o + 8 + j1] & 63 : (w[o + 8 + j1] >> 4) | ((w[o + 4 + j1] >> 6) << 4);
        const q = o + 16 + 32 * c;
        const xc = xb + 64 * c;
        let lo0 = 0, lo1 = 0, hi0 = 0, hi1 = 0;
        for (let l = 0; l < 32; l += 2) {
          const a = w[q + l];
          const e = w[q + l + 1];
          lo0 += (a & 15) * x[xc + l];
          lo1 += (e & 15) * x[xc + l + 1];
          hi0 += (a >> 4) * x[xc + l + 32];
          hi1 += (e >> 4) * x[xc + l + 33];
        }
        sumq += sc0 * (lo0 + lo1) + sc1 * (hi0 + hi1);
        summ += m0 * xsum32[(xb >> 5) + j0] + m1 * xsum32[(xb >> 5) + j1];
      }
      acc += d * sumq - dmin * summ;
    }
    out[r] = acc;
  }
}

export function matVecQ5_K(
  w: Uint8Array,
  rows: number,
  cols: number,
  x: Float64Array,
  xsum32: Float64Array,
  out: Float32Array,
): void {
  const nb = cols >> 8;
  for (let r = 0, o = 0; r < rows; r++) {
    let acc = 0;
    for (let b = 0, xb = 0; b < nb; b++, o += 176, xb += 256) {
      const d = F16[w[o] | (w[o + 1] << 8)];
      const dmin = F16[w[o + 2] | (w[o + 3] << 8)];
      let sumq = 0;
      let summ = 0;
      const qh = o + 16;
      for (let c = 0; c < 4; c++) {
        const j0 = 2 * c;
        const j1 = j0 + 1;
        const sc0 = j0 < 4 ? w[o + 4 + j0] & 63 : (w[o + 8 + j0] & 15) | ((w[o + j0] >> 6) << 4);
        const m0 = j0 < 4 ? w[o + 8 + j0] & 63 : (w[o + 8 + j0] >> 4) | ((w[o + 4 + j0] >> 6) << 4);
        const sc1 = j1 < 4 ? w[o + 4 + j1] & 63 : (w[o + 8 + j1] & 15) | ((w[o + j1] >> 6) << 4);
        const m1 = j1 < 4 ? w[o + 8 + j1] & 63 : (w[o + 8 + j1] >> 4) | ((w[o + 4 + j1] >> 6) << 4);
        const q = o + 48 + 32 * c;
        const xc = xb + 64 * c;
        const sh = 2 * c;
        let lo = 0, hi = 0;
        for (let l = 0; l < 32; l++) {
          const a = w[q + l];
          const h = w[qh + l] >> sh;
          lo += ((a & 15) | ((h & 1) << 4)) * x[xc + l];
          hi += ((a >> 4) | ((h & 2) << 3)) * x[xc + l + 32];
        }
        sumq += sc0 * lo + sc1 * hi;
        summ += m0 * xsum32[(xb >> 5) + j0] + m1 * xsum32[(xb >> 5) + j1];
      }
      acc += d * sumq - dmin * summ;
    }
    out[r] = acc;
  }
}

export function matVecQ6_K(
  w: Uint8Array,
  ws: Int8Array,
  rows: number,
  cols: number,
  x: Float64Array,
  xsum16: Float64Array,
  out: Float32Array,
): void {
  const nb = cols >> 8;
  for (let r = 0, o = 0; r < rows; r++) {
    let acc = 0;
    for (let b = 0, xb = 0; b < nb; b++, o += 210, xb += 256) {
      const d = F16[w[o + 208] | (w[o + 209] << 8)];
      let sum = 0;
      for (let half = 0; half < 2; half++) {
        const ql = o + 64 * half;
        const qh = o + 128 + 32 * half;
        const sc = o + 192 + 8 * half;
        const xh = xb + 128 * half;
        // 16-value groups: l in [0,16) uses scales is=0, [16,32) is=1 (+2, +4, +6 per quarter).
        for (let g = 0; g < 2; g++) {
          let s1 = 0, s2 = 0, s3 = 0, s4 = 0;
          for (let l = 16 * g, end = l + 16; l < end; l++) {
            const a = w[ql + l];
            const e = w[ql + l + 32];
            const h = w[qh + l];
            s1 += ((a & 15) | ((h & 3) << 4)) * x[xh + l];
            s2 += ((e & 15) | ((h & 12) << 2)) * x[xh + l + 32];
            s3 += ((a >> 4) | (h & 48)) * x[xh + l + 64];
            s4 += ((e >> 4) | ((h & 192) >> 2)) * x[xh + l + 96];
          }
          const xs = (xh >> 4) + g;
          sum += ws[sc + g] * (s1 - 32 * xsum16[xs]) +
            ws[sc + g + 2] * (s2 - 32 * xsum16[xs + 2]) +
            ws[sc + g + 4] * (s3 - 32 * xsum16[xs + 4]) +
            ws[sc + g + 6] * (s4 - 32 * xsum16[xs + 6]);
        }
      }
      acc += d * sum;
    }
    out[r] = acc;
  }
}
