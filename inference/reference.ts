/**
 * The CPU forward pass: the reference every other engine is checked
 * against, written to read top to bottom like llama2.c's `run.c`, with
 * attention (attention.ts), the feed-forward (feed-forward.ts) and RoPE
 * (rope.ts) in their own files.
 *
 * It runs any contiguous range of layers on given hidden states, so a model
 * split into pipeline stages runs the same arithmetic as a whole one.
 */
import { byteLengthOf } from "./ggml-type.ts";
import { dequantizeRow } from "./quant/mod.ts";
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";
import { matMul, rmsNorm } from "./primitives.ts";
import {
  attentionBlock,
  type AttentionScratch,
  attentionScratch,
  type RunState,
  type StepRows,
} from "./attention.ts";
import { feedForwardBlock, type FeedForwardScratch, feedForwardScratch } from "./feed-forward.ts";
import { moeBlock, type MoeScratch, moeScratch } from "./moe.ts";
import {
  linearAttentionBlock,
  type LinearAttentionScratch,
  linearAttentionScratch,
} from "./delta-net.ts";

export { attendRow, createRunState, type RunState } from "./attention.ts";
export { matMul, rmsNorm } from "./primitives.ts";
export { rope } from "./rope.ts";

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
  const scale = config.embedScale; // gemma3: sqrt(dim)
  if (scale !== undefined) {
    for (let i = 0; i < out.length; i++) out[i] *= scale;
  }
  return out;
}

/** Final logit soft-capping where the model has it: cap·tanh(logit/cap) in ggml's f32 steps. */
function softcap(config: ModelConfig, logits: Float32Array): void {
  const cap = config.logitSoftcap;
  if (cap === undefined) return;
  const inv = Math.fround(1 / cap);
  for (let i = 0; i < logits.length; i++) {
    logits[i] = Math.fround(Math.tanh(Math.fround(logits[i] * inv))) * cap;
  }
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
  softcap(config, logits);
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
  softcap(config, all);
  return rows.map((_, i) => all.subarray(i * vocabSize, (i + 1) * vocabSize));
}

// ---------------------------------------------------------------------------
// The transformer layers
//
// Rows of several sequences may be stacked (continuous batching): every
// weight product then sees all rows and reads each weight block once; only
// RoPE, the cache writes and attention look at which sequence a row is of
// (attention.ts); the feed-forward is per row (feed-forward.ts).

/** `count` consecutive rows of the stacked hidden states belong to `state`'s sequence. */
export interface RowGroup {
  state: RunState;
  count: number;
}

/** The blocks' working memory for a step of some number of rows. */
interface StepScratch {
  attention: AttentionScratch;
  feedForward?: FeedForwardScratch;
  moe?: MoeScratch;
  linear?: LinearAttentionScratch;
}

// One scratch per model, sized for the largest step so far; a step of n rows works in the
// first n rows of each buffer. Fresh buffers every step (~6 MiB a 64-row step of a 1.1B model)
// piled up as garbage that V8 collects only once its external memory has grown by ~100 MiB,
// and buffers kept per row count held one set per count a serving node's steps take (their
// prompt chunks vary with the time a step may take): either way a node's resident memory sat
// tens of MiB above model + KV cache. Every block overwrites its scratch before reading it, so
// the rows of any earlier step serve a later one.
const scratchKept = new WeakMap<ModelConfig, { rows: number; scratch: StepScratch }>();

function stepScratch(config: ModelConfig, n: number): StepScratch {
  let kept = scratchKept.get(config);
  if (!kept || kept.rows < n) {
    kept = {
      rows: n,
      scratch: {
        attention: attentionScratch(config, n),
        feedForward: config.moe ? undefined : feedForwardScratch(config, n),
        moe: config.moe ? moeScratch(config, n) : undefined,
        linear: config.recurrent ? linearAttentionScratch(config, n) : undefined,
      },
    };
    scratchKept.set(config, kept);
  }
  return kept.rows === n ? kept.scratch : firstRows(kept.scratch, kept.rows, n) as StepScratch;
}

/** Every buffer of `scratch` (each `rows` rows of its own width) cut to its first n rows. */
function firstRows(scratch: object, rows: number, n: number): object {
  const cut: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(scratch)) {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const typed = value as Float32Array;
      cut[key] = typed.subarray(0, (typed.length / rows) * n);
    } else cut[key] = value && typeof value === "object" ? firstRows(value, rows, n) : value;
  }
  return cut;
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
  const { dim } = config;
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
  const rows: StepRows = { n, state: (t) => groups[rowGroup[t]].state, pos: rowPos };
  const { attention, feedForward, moe, linear } = stepScratch(config, n);
  for (let li = 0; li < weights.layers.length; li++) {
    if (weights.layers[li].linear) linearAttentionBlock(config, weights, li, rows, hidden, linear!);
    else attentionBlock(config, weights, li, rows, hidden, attention);
    if (moe) moeBlock(config, weights, li, n, hidden, moe);
    else feedForwardBlock(config, weights, li, n, hidden, feedForward!);
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
