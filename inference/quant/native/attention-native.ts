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

/**
 * Rows of one cache that attention.c takes together, reading each key and value row once for
 * all of them: a prefill's rows past the first few hundred positions no longer find their
 * cache in L2, and each read it all again (the 1.1B's 2,048-token prompt spent a third of its
 * prefill in attention). More rows share more, and hold more scores in scratch (a thread's: 8 MiB
 * for four rows of 16 heads at 16 Ki positions).
 */
const BLOCK_ROWS = 4;

/** Ints a row takes in the table attention.c reads (its ROW_INTS). */
const ROW_INTS = 6;

/**
 * From this many positions a lone row's heads are shared between the two threads: the 1.1B
 * decoding at 2,000 positions went from 20-23 to 26-33 tokens/s (one stream, 2 threads). Handing
 * half over costs a few microseconds, about what a short row's whole attention takes.
 */
const SPLIT_MIN_POSITIONS = 256;

/** Where a lone row's heads split: at a kv head's bound, so no kv head is read twice. */
function headsSplit(shape: AttentionShape): number {
  const group = shape.heads / shape.kvHeads;
  return shape.kvHeads >= 2 ? Math.floor(shape.kvHeads / 2) * group : shape.heads >> 1;
}

/**
 * The order rows go to the native kernels, whose two threads take its first and second half:
 * a prompt's rows cost in proportion to their positions, so the first quarter and the last go
 * to one thread and the middle half to the other, the same work where the costs grow evenly
 * (a prompt chunk from position 0: 1 to 3 by halves). Each quarter keeps its rows in order,
 * so blocks of one cache still form.
 */
function balancedOrder(n: number): number[] {
  const quarter = n >> 2, last = n - quarter;
  const order = Array.from({ length: n }, (_, i) => i);
  if (quarter === 0) return order;
  return [...order.slice(0, quarter), ...order.slice(last), ...order.slice(quarter, last)];
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
  // A lone row over a long context (a decode step's) goes to both threads, half its heads each.
  const lone = n === 1 ? row(0) : undefined;
  const halves = lone !== undefined && lone.pos - lone.start + 1 >= SPLIT_MIN_POSITIONS &&
    shape.heads >= 2;
  const entries = halves ? 2 : n;
  if (rowPointers.length < 2 * entries) {
    rowPointers = new BigUint64Array(2 * entries);
    rowInts = new Int32Array(ROW_INTS * entries);
  }
  const addresses = new Map<Float16Array, bigint>();
  const of = (cache: Float16Array) => {
    let a = addresses.get(cache);
    if (a === undefined) addresses.set(cache, a = address(cache));
    return a;
  };
  let most = 0;
  const put = (i: number, t: number, r: AttentionRow, h0: number, h1: number) => {
    rowPointers[2 * i] = of(r.keys);
    rowPointers[2 * i + 1] = of(r.values);
    const at = ROW_INTS * i;
    rowInts[at] = r.start;
    rowInts[at + 1] = r.pos;
    rowInts[at + 2] = r.ring;
    rowInts[at + 3] = t;
    rowInts[at + 4] = h0;
    rowInts[at + 5] = h1;
    most = Math.max(most, r.pos - r.start + 1);
  };
  if (halves) {
    const mid = headsSplit(shape);
    put(0, 0, lone, 0, mid);
    put(1, 0, lone, mid, shape.heads);
  } else {
    balancedOrder(n).forEach((t, i) => put(i, t, lone ?? row(t), 0, shape.heads));
  }
  // Scores of BLOCK_ROWS rows a thread: attention.c takes that many rows of one cache together.
  const perRow = shape.heads * most, perThread = BLOCK_ROWS * perRow;
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
    perRow,
  ];
  ints.forEach((v, i) => headerView.setInt32(24 + 4 * i, v, true));
  return nativeRunRows(
    "attn_rows_f16",
    header,
    entries,
    rowPointers,
    rowsScratch,
    rowInts,
    att,
    entries >= 2,
  );
}
