/**
 * attendRow's work over an f16 KV cache (query-key scores, softmax, the weighted sum of
 * values) for a step's query rows in native code (attention.c), equal to attendRow's
 * TypeScript loops (../../attention.ts; attention-native.test.ts). Returns false where the
 * native kernels are off, and the caller runs attendRow row by row.
 */
import { nativeRunRows, nativeSymbols } from "./matvec-native.ts";

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

/**
 * Rounds `x` to f16 values in place as the native softmax rounds its weights (the tests hold
 * it to Float16Array's rounding); false where the native kernels are off.
 */
export function roundF16Native(x: Float64Array): boolean {
  const symbols = nativeSymbols();
  if (!symbols) return false;
  symbols.grove_round_f16(x, x.length);
  return true;
}

/** One query row of attentionRowsNative: its layer cache and its positions. */
export interface AttentionRow {
  keys: Float16Array;
  values: Float16Array;
  start: number;
  pos: number;
  ring: number;
}

const header = new Uint8Array(56);
const headerView = new DataView(header.buffer);
let rowPointers = new BigUint64Array(0);
let rowInts = new Int32Array(0);
let rowsScratch = new Float64Array(0);

/** Where a typed array's values start in memory (FFI), as a number C reads from a table. */
function address(array: Float16Array | Float32Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(array as BufferSource)));
}

/**
 * attendRow for `n` query rows at once: row t's query heads at q[t * qStride] (rounded to f16
 * values first, in place, as attentionBlock rounds a query for attendRow over an f16 cache),
 * its output at att[t * attStride] (every head's valueDim values), over positions [start, pos] of its
 * layer cache (row p at ring > 0 ? p % ring : p), `sinks` (gpt-oss) one logit per head; split
 * across the native kernels' two threads (a prefill's rows, or a batch's sequences). False
 * where the native kernels are off.
 */
export function attentionRowsNative(
  shape: AttentionShape,
  scale: number,
  sinks: Float32Array | undefined,
  n: number,
  q: Float32Array,
  qStride: number,
  att: Float32Array,
  attStride: number,
  row: (t: number) => AttentionRow,
): boolean {
  if (!nativeAttention()) return false;
  if (rowPointers.length < 2 * n) {
    rowPointers = new BigUint64Array(2 * n);
    rowInts = new Int32Array(4 * n);
  }
  const addresses = new Map<Float16Array, bigint>();
  const of = (cache: Float16Array) => {
    let a = addresses.get(cache);
    if (a === undefined) addresses.set(cache, a = address(cache));
    return a;
  };
  let most = 0;
  for (let t = 0; t < n; t++) {
    const r = row(t);
    rowPointers[2 * t] = of(r.keys);
    rowPointers[2 * t + 1] = of(r.values);
    rowInts[4 * t] = r.start;
    rowInts[4 * t + 1] = r.pos;
    rowInts[4 * t + 2] = r.ring;
    most = Math.max(most, r.pos - r.start + 1);
  }
  const perThread = shape.heads * most;
  if (rowsScratch.length < 2 * perThread) rowsScratch = new Float64Array(2 * perThread);
  headerView.setBigUint64(0, address(q), true);
  headerView.setBigUint64(8, sinks ? address(sinks) : 0n, true);
  headerView.setFloat64(16, scale, true);
  const ints = [
    shape.heads,
    shape.kvHeads,
    shape.headDim,
    shape.valueDim,
    qStride,
    attStride,
    perThread,
    0,
  ];
  ints.forEach((v, i) => headerView.setInt32(24 + 4 * i, v, true));
  return nativeRunRows(
    "attn_rows_f16",
    header,
    n,
    rowPointers,
    rowsScratch,
    rowInts,
    att,
    n >= 2,
  );
}
