/**
 * The CPU forward pass over several sequences at once: the same steps as
 * `forwardLayers` in reference.ts, but the rows of all sequences are stacked
 * so every weight product sees n = total rows and reads each weight block
 * once per step; only RoPE, the cache writes and attention look at which
 * sequence (and position) a row belongs to.
 */
import { matMul, outputLogits, rmsNorm, rope, type RunState } from "./reference.ts";
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";

/** `count` consecutive rows of the stacked hidden states belong to `state`'s sequence. */
export interface RowGroup {
  state: RunState;
  count: number;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * Causal attention of one query row at `pos` over a sequence's cache (query
 * head h reads kv head h / group), written to `att` at `attOffset`. The same
 * loop as in `forwardLayers`, so a batched row equals a single run's.
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

function addBias(v: Float32Array, bias: Float32Array | undefined, n: number) {
  if (!bias) return;
  const w = bias.length;
  for (let t = 0; t < n; t++) for (let i = 0; i < w; i++) v[t * w + i] += bias[i];
}

/**
 * Runs the layers on the stacked rows of `groups` (hidden: n × dim, in
 * group order); each group's cache grows by its count. A group's rows are
 * consecutive positions of its sequence from `state.position`.
 */
export function forwardLayersBatch(
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
