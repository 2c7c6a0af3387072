/**
 * The scale searches behind ggml's K-quant reference quantizers
 * (`nearest_int`, `make_qkx2_quants`, `make_qx_quants`, `get_scale_min_k4` in
 * ggml-quants.c). Every float operation is rounded to f32 with Math.fround in
 * the order C evaluates it, without fused multiply-adds (ggml-base is built
 * without them), so the chosen quants are the bytes ggml writes.
 */

const fr = Math.fround;

/** ggml's GROUP_MAX_EPS (1e-15f): below this a group counts as all zero. */
export const GROUP_MAX_EPS = fr(1e-15);

/**
 * The value of largest magnitude in x[from..from+n), the first where several tie (0 where all
 * are 0): the signed max ggml's quantizers map to their most negative level.
 */
export function signedAbsMax(x: Float32Array, from: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let i = from; i < from + n; i++) {
    const ax = Math.abs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

/** Round half to even, as ggml's `nearest_int` (the 1.5 * 2^23 trick) does. */
export function nearestInt(f: number): number {
  let r = Math.round(f);
  if (r - f === 0.5 && (r & 1) !== 0) r -= 1;
  return r | 0;
}

/**
 * Asymmetric (scale, min) fit of `n` values to levels 0..nmax, weighted, with
 * a grid search over `nstep + 1` candidate inverse scales. Writes the levels to
 * `L[lo..]`, `-min` to `minOut[minAt]`, and returns the scale.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
  minOut: Float32Array,
  minAt: number,
): number {
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    minOut[minAt] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[lo + i] = l;
    let diff = fr(fr(fr(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(weights[i] * diff));
  }
  if (nstep < 1) {
    minOut[minAt] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // `min` moves as better fits are found; later candidates use the new one.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      laux[i] = l;
      const wl = fr(weights[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
    let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = fr(sumXL / sumL2);
    }
    let curError = 0;
    for (let i = 0; i < n; i++) {
      let diff = fr(fr(fr(thisScale * laux[i]) + thisMin) - x[xo + i]);
      diff = useMad ? Math.abs(diff) : fr(diff * diff);
      curError = fr(curError + fr(weights[i] * diff));
    }
    if (curError < bestError) {
      for (let i = 0; i < n; i++) L[lo + i] = laux[i];
      bestError = curError;
      scale = thisScale;
      min = thisMin;
    }
  }
  minOut[minAt] = -min;
  return scale;
}

/**
 * Symmetric fit of `n` values to levels -nmax..nmax-1, stored offset by nmax
 * in `L[lo..]`; `make_qx_quants` with rmse_type 1 and no importance weights
 * (weight = x^2), the only form the reference quantizers call. Returns the scale.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Uint8Array,
  lo: number,
): number {
  const max = signedAbsMax(x, xo, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[lo + i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  const tenth = fr(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(tenth * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xo + i]));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/**
 * The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at
 * `q[at..]` (`get_scale_min_k4`). Returns scale | (min << 8).
 */
export function scaleMinK4(j: number, q: Uint8Array, at: number): number {
  if (j < 4) return (q[at + j] & 63) | ((q[at + j + 4] & 63) << 8);
  const sc = (q[at + j + 4] & 0xf) | ((q[at + j - 4] >> 6) << 4);
  const m = (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4);
  return sc | (m << 8);
}

/** Packs eight 6-bit (scale, min) pairs the way the K-quant quantizers do. */
export function packScalesK4(ls: Uint8Array, lm: Uint8Array, dst: Uint8Array, at: number): void {
  for (let j = 0; j < 12; j++) dst[at + j] = 0;
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      dst[at + j] = ls[j];
      dst[at + j + 4] = lm[j];
    } else {
      dst[at + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      dst[at + j - 4] |= (ls[j] >> 4) << 6;
      dst[at + j] |= (lm[j] >> 4) << 6;
    }
  }
}
