/**
 * The CPU forward pass: the reference every other engine is checked
 * against, written to read top to bottom like llama2.c's `run.c`.
 *
 * It runs any contiguous range of layers on given hidden states, so a model
 * split into pipeline stages runs the same arithmetic as a whole one.
 */
import { byteLengthOf } from "./ggml-type.ts";
import { dequantizeRow, matVec, matVecBatch } from "./quant/mod.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Matrix, ModelWeights } from "./weights.ts";

/** Per-sequence state: the KV cache of this engine's layers, and scratch buffers allocated once. */
export interface RunState {
  ctxSize: number; // positions the cache holds
  position: number; // positions already in the cache
  keyCache: Float32Array[]; // per local layer (ctxSize, kvHeads*headDim)
  valueCache: Float32Array[]; // per local layer (ctxSize, kvHeads*valueDim)
  scores: Float32Array; // (ctxSize) attention scores of one head
}

export function createRunState(
  config: ModelConfig,
  weights: ModelWeights,
  ctxSize: number,
): RunState {
  const layers = weights.layerEnd - weights.layerStart;
  const kvK = config.kvHeads * config.headDim;
  const kvV = config.kvHeads * config.valueDim;
  return {
    ctxSize,
    position: 0,
    keyCache: Array.from({ length: layers }, () => new Float32Array(ctxSize * kvK)),
    valueCache: Array.from({ length: layers }, () => new Float32Array(ctxSize * kvV)),
    scores: new Float32Array(ctxSize),
  };
}

// ---------------------------------------------------------------------------
// Primitives

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

/** out (n × rows) = xs (n × cols) · Wᵀ, reading each weight block once for all n rows. */
export function matMul(m: Matrix, xs: Float32Array, n: number, out: Float32Array): void {
  if (n === 1) matVec(m.type, m.data, m.rows, m.cols, xs, out);
  else matVecBatch(m.type, m.data, m.rows, m.cols, xs, n, out);
}

function addBias(v: Float32Array, bias: Float32Array | undefined, n: number) {
  if (!bias) return;
  const w = bias.length;
  for (let t = 0; t < n; t++) for (let i = 0; i < w; i++) v[t * w + i] += bias[i];
}

/**
 * Rotates the first `ropeDim` values of each head by position-dependent
 * angles: adjacent pairs (ggml "normal", llama) or halves (NeoX, qwen).
 */
export function rope(
  v: Float32Array,
  offset: number,
  heads: number,
  headDim: number,
  pos: number,
  config: ModelConfig,
  freqFactors?: Float32Array,
): void {
  const { ropeDim, ropeBase, ropeStyle } = config;
  const p = pos / config.ropeScale;
  const half = ropeDim / 2;
  for (let i = 0; i < half; i++) {
    let theta = p * Math.pow(ropeBase, (-2 * i) / ropeDim);
    if (freqFactors) theta /= freqFactors[i];
    const cos = Math.cos(theta), sin = Math.sin(theta);
    for (let h = 0; h < heads; h++) {
      const base = offset + h * headDim;
      const a = ropeStyle === "normal" ? base + 2 * i : base + i;
      const b = ropeStyle === "normal" ? a + 1 : a + half;
      const x0 = v[a], x1 = v[b];
      v[a] = x0 * cos - x1 * sin;
      v[b] = x0 * sin + x1 * cos;
    }
  }
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

// ---------------------------------------------------------------------------
// Entry and exit of the network

/** Hidden states (n × dim) of the given tokens: rows of the token embedding. */
export function embedTokens(config: ModelConfig, weights: ModelWeights, tokens: readonly number[]) {
  const emb = weights.tokenEmbedding;
  if (!emb) throw new Error("this engine does not hold the token embedding (not the first stage)");
  const rowBytes = byteLengthOf(emb.type, emb.cols);
  const out = new Float32Array(tokens.length * config.dim);
  tokens.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) {
      throw new Error(`token id ${t} is outside the vocabulary (0..${config.vocabSize - 1})`);
    }
    dequantizeRow(
      emb.type,
      emb.data.subarray(t * rowBytes, (t + 1) * rowBytes),
      emb.cols,
      out,
      i * config.dim,
    );
  });
  return out;
}

/** Logits (vocab) of the hidden state in row `row` of `hidden`: final norm, then the head. */
export function outputLogits(
  config: ModelConfig,
  weights: ModelWeights,
  hidden: Float32Array,
  row = 0,
): Float32Array {
  if (!weights.output || !weights.outputNorm) {
    throw new Error("this engine does not hold the output head (not the last stage)");
  }
  const x = new Float32Array(config.dim);
  rmsNorm(x, hidden.subarray(row * config.dim), weights.outputNorm, config.normEps);
  const logits = new Float32Array(config.vocabSize);
  matMul(weights.output, x, 1, logits);
  return logits;
}

/**
 * Logits (vocab each) of the given rows of `hidden`: final norm per row, then
 * the head once over all of them (one read of the output matrix per step).
 */
export function outputLogitsRows(
  config: ModelConfig,
  weights: ModelWeights,
  hidden: Float32Array,
  rows: readonly number[],
): Float32Array[] {
  const { dim, vocabSize, normEps } = config;
  if (rows.length === 1) return [outputLogits(config, weights, hidden, rows[0])];
  if (!weights.output || !weights.outputNorm) {
    throw new Error("this engine does not hold the output head (not the last stage)");
  }
  const xs = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => {
    rmsNorm(xs.subarray(i * dim), hidden.subarray(row * dim), weights.outputNorm!, normEps);
  });
  const all = new Float32Array(rows.length * vocabSize);
  matMul(weights.output, xs, rows.length, all);
  return rows.map((_, i) => all.subarray(i * vocabSize, (i + 1) * vocabSize));
}

// ---------------------------------------------------------------------------
// The transformer layers
//
// Rows of several sequences may be stacked (continuous batching): every
// weight product then sees all rows and reads each weight block once; only
// RoPE, the cache writes and attention look at which sequence a row is of.

/** `count` consecutive rows of the stacked hidden states belong to `state`'s sequence. */
export interface RowGroup {
  state: RunState;
  count: number;
}

/**
 * Causal attention of one query row at `pos` over a sequence's cache (query
 * head h reads kv head h / group), written to `att` at `attOffset`.
 */
export function attendRow(
  config: ModelConfig,
  q: Float32Array,
  qOffset: number,
  keyCache: Float32Array,
  valueCache: Float32Array,
  pos: number,
  scores: Float32Array,
  att: Float32Array,
  attOffset: number,
): void {
  const { heads, kvHeads, headDim, valueDim } = config;
  const kDim = kvHeads * headDim, vDim = kvHeads * valueDim;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  for (let h = 0; h < heads; h++) {
    const qo = qOffset + h * headDim;
    const kvh = Math.floor(h / group);
    let max = -Infinity;
    for (let p = 0; p <= pos; p++) {
      const ko = p * kDim + kvh * headDim;
      let s = 0;
      for (let i = 0; i < headDim; i++) s += q[qo + i] * keyCache[ko + i];
      s *= scale;
      scores[p] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let p = 0; p <= pos; p++) {
      const e = Math.exp(scores[p] - max);
      scores[p] = e;
      sum += e;
    }
    const ao = attOffset + h * valueDim;
    att.fill(0, ao, ao + valueDim);
    for (let p = 0; p <= pos; p++) {
      const a = scores[p] / sum;
      const vo = p * vDim + kvh * valueDim;
      for (let i = 0; i < valueDim; i++) att[ao + i] += a * valueCache[vo + i];
    }
  }
}

/**
 * Runs the layers on the stacked rows of `groups` (hidden: n × dim, in
 * group order); each group's cache grows by its count. A group's rows are
 * consecutive positions of its sequence from `state.position`.
 */
export function forwardRows(
  config: ModelConfig,
  weights: ModelWeights,
  groups: readonly RowGroup[],
  hidden: Float32Array,
): void {
  const { dim, heads, kvHeads, headDim, valueDim, ffn, normEps } = config;
  const n = groups.reduce((s, g) => s + g.count, 0);
  if (hidden.length < n * dim) throw new Error(`batch: ${n} rows need ${n * dim} hidden values`);
  // Row t → (group, position): resolved once for all layers.
  const rowGroup = new Int32Array(n), rowPos = new Int32Array(n);
  let r = 0;
  groups.forEach((g, gi) => {
    if (g.count < 1) throw new Error(`batch: sequence ${gi} has no rows`);
    if (g.state.position + g.count > g.state.ctxSize) {
      throw new Error(
        `context full: ${g.state.position} + ${g.count} positions exceed the context size ` +
          `${g.state.ctxSize}`,
      );
    }
    if (groups.indexOf(g) !== gi) throw new Error("batch: a sequence appears twice in one step");
    for (let t = 0; t < g.count; t++, r++) [rowGroup[r], rowPos[r]] = [gi, g.state.position + t];
  });
  const qDim = heads * headDim, kDim = kvHeads * headDim, vDim = kvHeads * valueDim;
  const xb = new Float32Array(n * dim);
  const q = new Float32Array(n * qDim);
  const k = new Float32Array(n * kDim);
  const v = new Float32Array(n * vDim);
  const att = new Float32Array(n * heads * valueDim);
  const proj = new Float32Array(n * dim);
  const gate = new Float32Array(n * ffn);
  const up = new Float32Array(n * ffn);

  for (let li = 0; li < weights.layers.length; li++) {
    const w = weights.layers[li];

    // attention: norm, project to q k v (+ biases for qwen2), all rows at once
    for (let t = 0; t < n; t++) rmsNorm(xb, hidden, w.attnNorm, normEps, dim, t * dim);
    matMul(w.wq, xb, n, q);
    matMul(w.wk, xb, n, k);
    matMul(w.wv, xb, n, v);
    addBias(q, w.bq, n);
    addBias(k, w.bk, n);
    addBias(v, w.bv, n);

    for (let t = 0; t < n; t++) {
      // per-head norm (qwen3), rotate by the row's own position, into its sequence's cache
      const state = groups[rowGroup[t]].state, pos = rowPos[t];
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
      rope(q, t * qDim, heads, headDim, pos, config, weights.ropeFreqFactors);
      rope(k, t * kDim, kvHeads, headDim, pos, config, weights.ropeFreqFactors);
      state.keyCache[li].set(k.subarray(t * kDim, (t + 1) * kDim), pos * kDim);
      state.valueCache[li].set(v.subarray(t * vDim, (t + 1) * vDim), pos * vDim);
    }

    // each row attends over its own sequence's cache only
    for (let t = 0; t < n; t++) {
      const state = groups[rowGroup[t]].state;
      attendRow(
        config,
        q,
        t * qDim,
        state.keyCache[li],
        state.valueCache[li],
        rowPos[t],
        state.scores,
        att,
        t * heads * valueDim,
      );
    }
    matMul(w.wo, att, n, proj);
    for (let i = 0; i < n * dim; i++) hidden[i] += proj[i];

    // feed-forward: norm, SwiGLU, down, residual
    for (let t = 0; t < n; t++) rmsNorm(xb, hidden, w.ffnNorm, normEps, dim, t * dim);
    matMul(w.wGate, xb, n, gate);
    matMul(w.wUp, xb, n, up);
    for (let i = 0; i < n * ffn; i++) gate[i] = silu(gate[i]) * up[i];
    matMul(w.wDown, gate, n, proj);
    for (let i = 0; i < n * dim; i++) hidden[i] += proj[i];
  }
  for (const g of groups) g.state.position += g.count;
}

/**
 * Runs this engine's layers on `n` new positions of one sequence. `hidden`
 * (n × dim) goes in as the previous layer's output and comes out as this
 * range's output; the KV cache grows by n.
 */
export function forwardLayers(
  config: ModelConfig,
  weights: ModelWeights,
  state: RunState,
  hidden: Float32Array,
  n: number,
): void {
  forwardRows(config, weights, [{ state, count: n }], hidden);
}
