/**
 * Attention on the CPU: each sequence's KV cache (RunState), causal attention of one query row
 * over it, and a layer's whole attention block over the stacked rows of a step.
 */
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";
import { addBias, matMul, rmsNorm } from "./primitives.ts";
import { rope } from "./rope.ts";
import { attentionWindow, postNorm, ropeConfigOf, scaleQueries } from "./gemma3.ts";
import { ropeFactorsFor } from "./long-rope.ts";
import { createRecurrentState, type RecurrentState, rewindSequence } from "./recurrent-state.ts";
import { isLocalLayer } from "./gemma3.ts";
import { rewindError, slidingCacheSize } from "./swa-cache.ts";
import { SCRATCH_ROWS } from "./model-shape.ts";
import { attentionRowsNative, nativeAttention } from "./quant/native/mod.ts";
import {
  type GatedQueryScratch,
  gatedQueryScratch,
  gateOutput,
  projectGatedQuery,
} from "./gated-attention.ts";

/**
 * How the cache stores keys and values: f16 as llama.cpp's default cache (each value rounded to
 * nearest even, which Float16Array does exactly as ggml's fp32→fp16), or f32.
 */
export type KvType = "f16" | "f32";
export type KvArray = Float32Array | Float16Array;

/** The cache's first size, in positions; it doubles as positions fill, up to ctxSize. */
export const KV_FIRST_POSITIONS = 256;

/**
 * Per-sequence state: the KV cache of this engine's layers, and scratch buffers. The cache
 * grows as positions fill (growKvCache), so a 128k-context model's session costs what its
 * sequence holds, not its whole context, until it is that long. Sliding-window layers (gemma3's
 * local ones, gpt-oss's even ones) keep a ring of `ringSize` positions instead (swa-cache.ts).
 */
export interface RunState {
  ctxSize: number; // positions the cache may hold
  position: number; // positions already in the cache
  kvType: KvType;
  keyCache: KvArray[]; // per local layer (capacity, kvHeads*headDim)
  valueCache: KvArray[]; // per local layer (capacity, kvHeads*valueDim)
  scores: Float32Array; // (capacity) attention scores of one head
  recurrent?: RecurrentState; // qwen35moe: the linear-attention layers' state (recurrent-state.ts)
  /** Per local layer: a sliding-window layer, whose cache is a ring (position p at p mod ringSize). */
  ringLayers: boolean[];
  /** The ring layers' window; 0 when this state has none. */
  window: number;
  /** Positions a ring layer's cache holds at most: the window and the most rows one step adds. */
  ringSize: number;
  /** Positions before this one are overwritten in the rings. */
  ringFrom: number;
}

/**
 * The state of one sequence over the weights' layers. `stepRows` is the most rows one step adds
 * to it (the batch engines' maxRows): the rings hold that beyond the window, and grow if a step
 * brings more.
 */
export function createRunState(
  config: ModelConfig,
  weights: ModelWeights,
  ctxSize: number,
  kvType: KvType = "f16",
  stepRows: number = SCRATCH_ROWS,
): RunState {
  const layers = weights.layerEnd - weights.layerStart;
  const ringLayers = Array.from(
    { length: layers },
    (_, i) => isLocalLayer(config, weights.layerStart + i),
  );
  const window = ringLayers.includes(true) ? config.slidingWindow! : 0;
  const state: RunState = {
    ctxSize,
    position: 0,
    kvType,
    keyCache: Array.from({ length: layers }, () => new Float32Array(0)),
    valueCache: Array.from({ length: layers }, () => new Float32Array(0)),
    scores: new Float32Array(0),
    recurrent: createRecurrentState(config, weights.layerStart, weights.layerEnd),
    ringLayers,
    window,
    ringSize: window > 0 ? slidingCacheSize(config, ctxSize, stepRows) : ctxSize,
    ringFrom: 0,
  };
  growKvCache(config, state, Math.min(ctxSize, KV_FIRST_POSITIONS));
  return state;
}

/**
 * Whether the sequence can be moved back to `position`: not past its end, a ring layer must
 * still hold the window before it, and a recurrent state goes back only to 0.
 */
export function canRewindRunState(state: RunState, position: number): boolean {
  if (rewindError(state, position)) return false;
  return !state.recurrent || position === 0 || position === state.position;
}

/**
 * Moves the sequence back to `position` (recurrent-state.ts rewindSequence); a position whose
 * window the rings no longer hold is refused with a RewindRefusedError (swa-cache.ts), after
 * which the caller rewinds to 0, which always works.
 */
export function rewindRunState(state: RunState, position: number): void {
  const refused = rewindError(state, position);
  if (refused) throw refused;
  rewindSequence(state, position);
  if (position === 0) state.ringFrom = 0;
}

/** Positions the state's cache holds now (its capacity, not its fill). */
export function kvCapacity(state: RunState): number {
  return state.scores.length;
}

/**
 * Makes room for `positions` positions, written by a step that starts at `from`: the capacity
 * doubles (from KV_FIRST_POSITIONS) until it holds them, never past ctxSize; what the cache held
 * is kept. A ring layer's cache grows the same way up to ringSize, then stays; a step of more
 * rows than the ring has room for beside the window widens the ring (its positions moved to
 * their new rows).
 */
export function growKvCache(
  config: ModelConfig,
  state: RunState,
  positions: number,
  from: number = positions - 1,
): void {
  const have = state.scores.length;
  if (positions > state.ctxSize) {
    throw new Error(`position ${positions - 1} is past the context of ${state.ctxSize}`);
  }
  const ringBefore = state.ringSize;
  // The step's first row must find its window after its last row is written.
  if (state.window > 0) {
    state.ringSize = Math.max(ringBefore, Math.min(state.ctxSize, state.window + positions - from));
  }
  if (positions <= have && state.ringSize === ringBefore) return;
  let capacity = Math.max(have, KV_FIRST_POSITIONS);
  while (capacity < positions) capacity *= 2;
  capacity = Math.min(capacity, state.ctxSize);
  const kvK = config.kvHeads * config.headDim;
  const kvV = config.kvHeads * config.valueDim;
  const alloc = (length: number) =>
    state.kvType === "f16" ? new Float16Array(length) : new Float32Array(length);
  // The old cache's buffer moves into the grown one (ArrayBuffer.transfer), so its memory is
  // freed now rather than whenever V8 next collects: a context's doublings otherwise left about
  // a whole cache of garbage resident. (The first growth replaces an empty f32 placeholder.)
  const grown = (old: KvArray, width: number) => {
    const from = old.buffer, f16 = old instanceof Float16Array;
    if (
      old.length === 0 || f16 !== (state.kvType === "f16") || old.byteOffset !== 0 ||
      !(from instanceof ArrayBuffer)
    ) {
      const fresh = alloc(capacity * width);
      fresh.set(old);
      return fresh;
    }
    const buffer = from.transfer(capacity * width * old.BYTES_PER_ELEMENT);
    return f16 ? new Float16Array(buffer) : new Float32Array(buffer);
  };
  const ring = (old: KvArray, width: number) => {
    const length = Math.min(capacity, state.ringSize) * width;
    if (old.length === length) return old;
    const next = alloc(length);
    // Below its size a ring has not wrapped (p mod size is p): a plain copy keeps it.
    if (state.ringSize === ringBefore) next.set(old);
    else moveRing(old, next, width, ringBefore, state.ringSize, state.ringFrom, state.position);
    return next;
  };
  // A linear-attention layer (qwen35moe) keeps a recurrent state instead: no cache to grow.
  const linear = (i: number) => state.recurrent?.layers[i] !== undefined;
  const grow = (c: KvArray, i: number, width: number) =>
    linear(i) ? c : state.ringLayers[i] ? ring(c, width) : grown(c, width);
  state.keyCache = state.keyCache.map((c, i) => grow(c, i, kvK));
  state.valueCache = state.valueCache.map((c, i) => grow(c, i, kvV));
  if (capacity !== have) state.scores = new Float32Array(capacity);
}

/** Copies the ring's positions [from, to) from rows p mod `before` to rows p mod `after`. */
function moveRing(
  old: KvArray,
  next: KvArray,
  width: number,
  before: number,
  after: number,
  from: number,
  to: number,
): void {
  for (let p = from; p < to; p++) {
    const at = (p % before) * width;
    next.set(old.subarray(at, at + width), (p % after) * width);
  }
}

/** Marks the ring rows the positions up to `positions` overwrite (call before writing them). */
function claimRing(state: RunState, positions: number): void {
  if (state.window > 0) state.ringFrom = Math.max(state.ringFrom, positions - state.ringSize);
}

/** The row of the cache of local layer `li` that holds position `pos`. */
function cacheRow(state: RunState, li: number, pos: number): number {
  return state.ringLayers[li] ? pos % state.ringSize : pos;
}

/** The bytes the state's cache holds now, keys and values of all its layers. */
export function kvCacheBytes(state: RunState): number {
  let bytes = 0;
  for (const c of state.keyCache) bytes += c.byteLength;
  for (const c of state.valueCache) bytes += c.byteLength;
  return bytes;
}

/**
 * q . k over `headDim` elements as eight f64 partial sums (element i adds to sum i mod 8, in
 * order), added in a fixed tree: the order attention.c's vectors take, so both paths give the
 * same bits; eight independent sums also keep this loop off one chain of dependent adds.
 */
function dotQK(q: Float32Array, qo: number, k: KvArray, ko: number, headDim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  const full = headDim & ~7;
  for (let i = 0; i < full; i += 8) {
    s0 += q[qo + i] * k[ko + i];
    s1 += q[qo + i + 1] * k[ko + i + 1];
    s2 += q[qo + i + 2] * k[ko + i + 2];
    s3 += q[qo + i + 3] * k[ko + i + 3];
    s4 += q[qo + i + 4] * k[ko + i + 4];
    s5 += q[qo + i + 5] * k[ko + i + 5];
    s6 += q[qo + i + 6] * k[ko + i + 6];
    s7 += q[qo + i + 7] * k[ko + i + 7];
  }
  if (full < headDim) return dotTail(q, qo, k, ko, headDim, [s0, s1, s2, s3, s4, s5, s6, s7]);
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

/** dotQK's end where `headDim` is not a multiple of 8 (none of the supported models' heads). */
function dotTail(
  q: Float32Array,
  qo: number,
  k: KvArray,
  ko: number,
  headDim: number,
  s: number[],
): number {
  const full = headDim & ~7;
  for (let i = full; i < headDim; i++) s[i - full] += q[qo + i] * k[ko + i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/**
 * Causal attention of one query row at `pos` over a sequence's cache (query
 * head h reads kv head h / group), written to `att` at `attOffset`. With a
 * `window` (> 0) it sees only the last `window` positions, its own included
 * (llama.cpp's standard SWA mask hides p when pos - p >= window). With
 * `sinks` (gpt-oss), head h's softmax also counts a position of logit sinks[h]
 * that holds no value (ggml_soft_max_ext's sinks), so its weights sum to less than 1.
 * With a `ring` (> 0) the cache holds position p at row p mod ring (swa-cache.ts); scores stay
 * indexed by position. This is the reference: attentionBlock runs a step's rows over f16
 * caches in native code where that is built (attention.c), with the same results.
 */
export function attendRow(
  config: ModelConfig,
  q: Float32Array,
  qOffset: number,
  keyCache: KvArray,
  valueCache: KvArray,
  pos: number,
  scores: Float32Array,
  att: Float32Array,
  attOffset: number,
  window = 0,
  sinks?: Float32Array,
  ring = 0,
): void {
  const { heads, kvHeads, headDim, valueDim } = config;
  const kDim = kvHeads * headDim, vDim = kvHeads * valueDim;
  const group = heads / kvHeads;
  const scale = scoreScale(config);
  const start = window > 0 ? Math.max(0, pos - window + 1) : 0;
  const row = (p: number) => ring > 0 ? p % ring : p;
  // llama.cpp's f16 cache multiplies V by the probabilities rounded to f16 (ggml mul_mat).
  const f16 = valueCache instanceof Float16Array;
  for (let h = 0; h < heads; h++) {
    const qo = qOffset + h * headDim;
    const kh = Math.floor(h / group) * headDim;
    let max = -Infinity;
    for (let p = start; p <= pos; p++) {
      const s = dotQK(q, qo, keyCache, row(p) * kDim + kh, headDim) * scale;
      scores[p] = s;
      if (s > max) max = s;
    }
    if (sinks && sinks[h] > max) max = sinks[h];
    let sum = sinks ? Math.exp(sinks[h] - max) : 0;
    for (let p = start; p <= pos; p++) {
      const e = Math.exp(scores[p] - max);
      scores[p] = e;
      sum += e;
    }
    const ao = attOffset + h * valueDim;
    att.fill(0, ao, ao + valueDim);
    const vh = Math.floor(h / group) * valueDim;
    const weight = (p: number) => f16 ? Math.f16round(scores[p] / sum) : scores[p] / sum;
    // Four positions per pass: each output still adds their products one at a time, in
    // position order, rounded to f32 after each add as `att[i] += a * v` rounds.
    let p = start;
    for (; p + 3 <= pos; p += 4) {
      const a0 = weight(p), a1 = weight(p + 1), a2 = weight(p + 2), a3 = weight(p + 3);
      const v0 = row(p) * vDim + vh, v1 = row(p + 1) * vDim + vh;
      const v2 = row(p + 2) * vDim + vh, v3 = row(p + 3) * vDim + vh;
      for (let i = 0; i < valueDim; i++) {
        let x = Math.fround(att[ao + i] + a0 * valueCache[v0 + i]);
        x = Math.fround(x + a1 * valueCache[v1 + i]);
        x = Math.fround(x + a2 * valueCache[v2 + i]);
        att[ao + i] = x + a3 * valueCache[v3 + i];
      }
    }
    for (; p <= pos; p++) {
      const a = weight(p), vo = row(p) * vDim + vh;
      for (let i = 0; i < valueDim; i++) att[ao + i] += a * valueCache[vo + i];
    }
  }
}

/** Queries the model scales itself (attentionScale) were scaled before (scaleQueries). */
function scoreScale(config: ModelConfig): number {
  return config.attentionScale !== undefined ? 1 : 1 / Math.sqrt(config.headDim);
}

/** Whether attendRowsNative runs this step's rows: the native kernels do, every cache is f16. */
function attendsNative(rows: StepRows, li: number): boolean {
  if (!nativeAttention()) return false;
  for (let t = 0; t < rows.n; t++) {
    if (!(rows.state(t).keyCache[li] instanceof Float16Array)) return false;
  }
  return true;
}

/**
 * Every row's attendRow at once in native code, split across its two threads (where
 * attendsNative), each query rounded to f16 there (in place) as attentionBlock rounds it for
 * attendRow.
 */
function attendRowsNative(
  config: ModelConfig,
  sinks: Float32Array | undefined,
  rows: StepRows,
  li: number,
  layer: number,
  q: Float32Array,
  att: Float32Array,
): void {
  const { n, pos } = rows;
  const window = attentionWindow(config, layer);
  const { heads, headDim, valueDim } = config;
  const ran = attentionRowsNative(
    config,
    scoreScale(config),
    sinks,
    n,
    q,
    heads * headDim,
    att,
    heads * valueDim,
    (t) => {
      const state = rows.state(t);
      return {
        keys: state.keyCache[li] as Float16Array,
        values: state.valueCache[li] as Float16Array,
        start: window > 0 ? Math.max(0, pos[t] - window + 1) : 0,
        pos: pos[t],
        ring: state.ringLayers[li] ? state.ringSize : 0,
      };
    },
  );
  if (!ran) throw new Error("native attention: the native kernels went off mid-step");
}

/** The rows of one step: which sequence (RunState) and position each row is. */
export interface StepRows {
  n: number;
  state: (t: number) => RunState;
  pos: Int32Array;
}

/** Scratch buffers of one step's attention, sized for its rows. */
export interface AttentionScratch {
  xb: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  att: Float32Array;
  proj: Float32Array;
  gated?: GatedQueryScratch; // qwen35moe's output gate (gated-attention.ts)
}

export function attentionScratch(config: ModelConfig, n: number): AttentionScratch {
  const { dim, heads, kvHeads, headDim, valueDim } = config;
  return {
    xb: new Float32Array(n * dim),
    q: new Float32Array(n * heads * headDim),
    k: new Float32Array(n * kvHeads * headDim),
    v: new Float32Array(n * kvHeads * valueDim),
    att: new Float32Array(n * heads * valueDim),
    proj: new Float32Array(n * dim),
    gated: config.attnOutputGate ? gatedQueryScratch(config, n) : undefined,
  };
}

/**
 * One layer's attention over the stacked rows: norm, q k v (+ biases for qwen2), per-head
 * norms (qwen3), RoPE at each row's own position, into its sequence's cache, causal attention
 * over that cache only, the output projection, and the residual add into `hidden`.
 */
export function attentionBlock(
  config: ModelConfig,
  weights: ModelWeights,
  li: number,
  rows: StepRows,
  hidden: Float32Array,
  s: AttentionScratch,
): void {
  const { dim, heads, kvHeads, headDim, valueDim, normEps } = config;
  const w = weights.layers[li];
  const { n, pos } = rows;
  const qDim = heads * headDim, kDim = kvHeads * headDim, vDim = kvHeads * valueDim;
  const { xb, q, k, v, att, proj } = s;
  const layer = weights.layerStart + li;
  const ropeConfig = ropeConfigOf(config, layer);

  for (let t = 0; t < n; t++) rmsNorm(xb, hidden, w.attnNorm, normEps, dim, t * dim);
  if (s.gated) projectGatedQuery(config, w.wq, xb, n, q, s.gated);
  else matMul(w.wq, xb, n, q);
  matMul(w.wk, xb, n, k, true);
  matMul(w.wv, xb, n, v, true);
  addBias(q, w.bq, n);
  addBias(k, w.bk, n);
  addBias(v, w.bv, n);

  // Native attention (every row's cache f16) rounds each query to f16 itself.
  const native = attendsNative(rows, li);
  // Last rows first: a sequence's last row sizes its cache (and ring) once for the whole step.
  for (let t = n - 1; t >= 0; t--) {
    const state = rows.state(t);
    growKvCache(config, state, pos[t] + 1, state.position);
    claimRing(state, pos[t] + 1);
  }
  for (let t = 0; t < n; t++) {
    const state = rows.state(t);
    if (w.qNorm) {
      for (let h = 0; h < heads; h++) {
        rmsNorm(q, q, w.qNorm, normEps, headDim, t * qDim + h * headDim);
      }
    }
    if (w.kNorm) {
      for (let h = 0; h < kvHeads; h++) {
        rmsNorm(k, k, w.kNorm, normEps, headDim, t * kDim + h * headDim);
      }
    }
    const factors = ropeFactorsFor(config, weights, state.ctxSize);
    rope(q, t * qDim, heads, headDim, pos[t], ropeConfig, factors);
    rope(k, t * kDim, kvHeads, headDim, pos[t], ropeConfig, factors);
    scaleQueries(config, q, t * qDim, qDim);
    const row = cacheRow(state, li, pos[t]);
    state.keyCache[li].set(k.subarray(t * kDim, (t + 1) * kDim), row * kDim);
    state.valueCache[li].set(v.subarray(t * vDim, (t + 1) * vDim), row * vDim);
    // llama.cpp's f16 cache takes Q·K in f16 too (ggml mul_mat converts Q to K's type).
    if (state.kvType === "f16" && !native) roundToF16(q, t * qDim, qDim);
  }

  if (native) attendRowsNative(config, w.sinks, rows, li, layer, q, att);
  else {
    for (let t = 0; t < n; t++) {
      const state = rows.state(t);
      attendRow(
        config,
        q,
        t * qDim,
        state.keyCache[li],
        state.valueCache[li],
        pos[t],
        state.scores,
        att,
        t * heads * valueDim,
        attentionWindow(config, layer),
        w.sinks,
        state.ringLayers[li] ? state.ringSize : 0,
      );
    }
  }
  if (s.gated) gateOutput(att, s.gated.gate, n * heads * valueDim);
  matMul(w.wo, att, n, proj);
  addBias(proj, w.bo, n);
  postNorm(proj, w.attnPostNorm, normEps, n, dim);
  for (let i = 0; i < n * dim; i++) hidden[i] += proj[i];
}

/** f16 scratch for rounding many values at once (grown on demand). */
let halves = new Float16Array(0);

/**
 * Rounds v[offset, offset + n) to f16, as Math.f16round does value by value: a typed-array
 * copy converts each value with the same single rounding, without a builtin call per value.
 */
function roundToF16(v: Float32Array | Float64Array, offset: number, n: number): void {
  if (halves.length < n) halves = new Float16Array(n);
  const h = halves.subarray(0, n);
  h.set(v.subarray(offset, offset + n));
  v.set(h, offset);
}
