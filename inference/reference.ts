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

// ---------------------------------------------------------------------------
// The transformer layers

/**
 * Runs this engine's layers on `n` new positions. `hidden` (n × dim) goes in
 * as the previous layer's output and comes out as this range's output; the
 * KV cache grows by n.
 */
export function forwardLayers(
  config: ModelConfig,
  weights: ModelWeights,
  state: RunState,
  hidden: Float32Array,
  n: number,
): void {
  const { dim, heads, kvHeads, headDim, valueDim, ffn, normEps } = config;
  const pos0 = state.position;
  if (pos0 + n > state.ctxSize) {
    throw new Error(
      `context full: ${pos0} + ${n} positions exceed the context size ${state.ctxSize}`,
    );
  }
  const qDim = heads * headDim, kDim = kvHeads * headDim, vDim = kvHeads * valueDim;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const xb = new Float32Array(n * dim); // normed input of a sub-block
  const q = new Float32Array(n * qDim);
  const k = new Float32Array(n * kDim);
  const v = new Float32Array(n * vDim);
  const att = new Float32Array(n * heads * valueDim); // attention output before wo
  const proj = new Float32Array(n * dim);
  const gate = new Float32Array(n * ffn);
  const up = new Float32Array(n * ffn);
  const scores = state.scores;

  for (let li = 0; li < weights.layers.length; li++) {
    const w = weights.layers[li];
    const keyCache = state.keyCache[li], valueCache = state.valueCache[li];

    // attention: norm, project to q k v (+ biases for qwen2)
    for (let t = 0; t < n; t++) rmsNorm(xb, hidden, w.attnNorm, normEps, dim, t * dim);
    matMul(w.wq, xb, n, q);
    matMul(w.wk, xb, n, k);
    matMul(w.wv, xb, n, v);
    addBias(q, w.bq, n);
    addBias(k, w.bk, n);
    addBias(v, w.bv, n);

    for (let t = 0; t < n; t++) {
      // per-head norm of queries and keys (qwen3), then rotate by position
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
      rope(q, t * qDim, heads, headDim, pos0 + t, config, weights.ropeFreqFactors);
      rope(k, t * kDim, kvHeads, headDim, pos0 + t, config, weights.ropeFreqFactors);
      keyCache.set(k.subarray(t * kDim, (t + 1) * kDim), (pos0 + t) * kDim);
      valueCache.set(v.subarray(t * vDim, (t + 1) * vDim), (pos0 + t) * vDim);
    }

    // causal multi-head attention over the cache; query head h reads kv head h / group
    for (let t = 0; t < n; t++) {
      const pos = pos0 + t;
      for (let h = 0; h < heads; h++) {
        const qo = t * qDim + h * headDim;
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
        const ao = t * heads * valueDim + h * valueDim;
        att.fill(0, ao, ao + valueDim);
        for (let p = 0; p <= pos; p++) {
          const a = scores[p] / sum;
          const vo = p * vDim + kvh * valueDim;
          for (let i = 0; i < valueDim; i++) att[ao + i] += a * valueCache[vo + i];
        }
      }
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
  state.position += n;
}
