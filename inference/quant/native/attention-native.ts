/**
 * The two heavy loops of attention over an f16 KV cache (query-key scores, then the weighted
 * sum of values) in native code (attention.c), each equal bit for bit to attendRow's
 * TypeScript loops (../../attention.ts). Null-safe: each returns false where the native
 * kernels are off, and the caller runs its own loop.
 */
import { nativeSymbols } from "./matvec-native.ts";

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
}

/** Whether the native attention loops run here. */
export function nativeAttention(): boolean {
  return nativeSymbols() !== null;
}

/**
 * out[h * np + p - start] = scale * (query head h . key row of p), np = pos - start + 1, for
 * `q` one row's query heads and `keys` one layer's cache (row p at (ring > 0 ? p % ring : p)).
 */
export function attentionScoresNative(
  q: Float32Array,
  keys: Float16Array,
  shape: AttentionShape,
  start: number,
  pos: number,
  ring: number,
  scale: number,
  out: Float64Array,
): boolean {
  const s = nativeSymbols();
  if (!s) return false;
  const { heads, kvHeads, headDim } = shape;
  s.attn_scores_f16(q, keys, heads, kvHeads, headDim, start, pos, ring, scale, out);
  return true;
}

/**
 * att[h * valueDim + i] = sum over positions p of weights[h * np + p - start] * value row p's
 * element i, in position order, rounded to f32 after each add.
 */
export function attentionValuesNative(
  weights: Float64Array,
  values: Float16Array,
  shape: AttentionShape,
  start: number,
  pos: number,
  ring: number,
  att: Float32Array,
): boolean {
  const s = nativeSymbols();
  if (!s) return false;
  const { heads, kvHeads, valueDim } = shape;
  s.attn_values_f16(weights, values, heads, kvHeads, valueDim, start, pos, ring, att);
  return true;
}
