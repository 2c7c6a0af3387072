/**
 * The arithmetic every part of the CPU forward pass shares: RMS norm, weight products (each
 * weight block read once for all rows), biases and the SiLU activation.
 */
import { matVec, matVecBatch } from "./quant/mod.ts";
import { siluMulNative } from "./quant/native/mod.ts";
import type { Matrix } from "./weights.ts";

/** out = x / rms(x) * w, over `n` values starting at `offset`. */
export function rmsNorm(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  eps: number,
  n = w.length,
  offset = 0,
): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[offset + i] * x[offset + i];
  const scale = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[offset + i] = x[offset + i] * scale * w[i];
}

/**
 * out (n × rows) = xs (n × cols) · Wᵀ, reading each weight block once for all n rows.
 * `sameInput`: xs is unchanged since the last matMul took it (q, k and v of one input; gate
 * and up), so its rounding for the kernels is reused.
 */
export function matMul(
  m: Matrix,
  xs: Float32Array,
  n: number,
  out: Float32Array,
  sameInput = false,
): void {
  if (n === 1) matVec(m.type, m.data, m.rows, m.cols, xs, out, sameInput);
  else matVecBatch(m.type, m.data, m.rows, m.cols, xs, n, out, sameInput);
}

export function addBias(v: Float32Array, bias: Float32Array | undefined, n: number) {
  if (!bias) return;
  const w = bias.length;
  for (let t = 0; t < n; t++) for (let i = 0; i < w; i++) v[t * w + i] += bias[i];
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** gate = silu(gate) · up over the first `count` values (in native code where it is built). */
export function siluMul(gate: Float32Array, up: Float32Array, count: number): void {
  if (siluMulNative(gate, up, count)) return;
  for (let i = 0; i < count; i++) gate[i] = silu(gate[i]) * up[i];
}
