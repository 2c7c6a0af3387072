/**
 * attendRow's work over an f16 KV cache (query-key scores, softmax, the weighted sum of
 * values) for one query row in native code (attention.c), equal to attendRow's TypeScript
 * loops (../../attention.ts; attention-native.test.ts). Returns false where the native
 * kernels are off, and the caller runs its own loops.
 */
import { nativeSymbols } from "./matvec-native.ts";

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
}

/** Whether the native attention runs here. */
export function nativeAttention(): boolean {
  return nativeSymbols() !== null;
}

let scratch = new Float64Array(0);

/**
 * att[h * valueDim + i] for every head of the query row `q`, over positions [start, pos] of
 * one layer's `keys` and `values` (row p at ring > 0 ? p % ring : p); `sinks` (gpt-oss) one
 * logit per head.
 */
export function attentionRowNative(
  q: Float32Array,
  keys: Float16Array,
  values: Float16Array,
  shape: AttentionShape,
  start: number,
  pos: number,
  ring: number,
  scale: number,
  sinks: Float32Array | undefined,
  att: Float32Array,
): boolean {
  const s = nativeSymbols();
  if (!s) return false;
  const { heads, kvHeads, headDim, valueDim } = shape;
  const need = heads * (pos - start + 1);
  if (scratch.length < need) scratch = new Float64Array(Math.max(need, 2 * scratch.length));
  s.attn_row_f16(
    q,
    keys,
    values,
    heads,
    kvHeads,
    headDim,
    valueDim,
    start,
    pos,
    ring,
    scale,
    sinks ?? null,
    scratch,
    att,
  );
  return true;
}
