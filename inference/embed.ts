/**
 * Embeddings from a decoder LLM, as llama.cpp's server makes them: the prompt's tokens through
 * every layer and the output norm (no head), the normed rows pooled into one vector (`last`: the
 * last position's row, which is what the head reads to predict the next token; `mean`: the
 * average over positions), then L2-normalised.
 *
 * It runs on a throwaway RunState sized to the input, apart from the engine's sessions and
 * batch slots, in chunks with a turn of the event loop between them, so a long input does not
 * stall the node's other requests or its keep-alives for its whole length.
 */
import { createRunState, embedTokens, forwardRows, rmsNorm } from "./reference.ts";
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";

export type Pooling = "last" | "mean";
export const POOLINGS: readonly Pooling[] = ["last", "mean"];

export interface EmbedOptions {
  pooling: Pooling;
  /** Positions per forward pass (default 64): the longest the event loop waits. */
  chunk?: number;
}

/** The GGUF's `{arch}.pooling_type` (llama.cpp's enum: 1 mean, 3 last), when it names one of ours. */
export function statedPooling(
  metadata: Record<string, unknown>,
  arch: string,
): Pooling | undefined {
  const stated = metadata[`${arch}.pooling_type`];
  return stated === 1 ? "mean" : stated === 3 ? "last" : undefined;
}

/**
 * The pooled rows of the output norm, before the L2 normalisation (the `last` one is exactly
 * the vector outputLogits multiplies by the head).
 */
export async function pooledHidden(
  config: ModelConfig,
  weights: ModelWeights,
  tokens: readonly number[],
  options: EmbedOptions,
): Promise<Float32Array> {
  const { dim, normEps } = config;
  const norm = weights.outputNorm;
  const whole = weights.layerStart === 0 && weights.layerEnd === config.layers;
  if (!norm || !weights.tokenEmbedding || !whole) {
    throw new Error("embeddings need the whole model (token embedding, every layer, output norm)");
  }
  if (tokens.length === 0) throw new Error("an embedding needs at least one token");
  const chunk = Math.max(1, options.chunk ?? 64);
  const state = createRunState(config, weights, tokens.length);
  const sum = new Float64Array(dim);
  const row = new Float32Array(dim);
  for (let start = 0; start < tokens.length; start += chunk) {
    if (start > 0) await nextTurn();
    const ids = tokens.slice(start, start + chunk);
    const hidden = embedTokens(config, weights, ids);
    forwardRows(config, weights, [{ state, count: ids.length }], hidden);
    const last = start + ids.length === tokens.length;
    const from = options.pooling === "mean" ? 0 : last ? ids.length - 1 : ids.length;
    for (let t = from; t < ids.length; t++) {
      rmsNorm(row, hidden.subarray(t * dim, (t + 1) * dim), norm, normEps);
      for (let i = 0; i < dim; i++) sum[i] += row[i];
    }
  }
  const count = options.pooling === "mean" ? tokens.length : 1;
  return Float32Array.from(sum, (v) => v / count);
}

/** The embedding of `tokens`: pooled, then scaled to length 1 (a zero vector stays zero). */
export async function embedSequence(
  config: ModelConfig,
  weights: ModelWeights,
  tokens: readonly number[],
  options: EmbedOptions,
): Promise<Float32Array> {
  return l2Normalize(await pooledHidden(config, weights, tokens, options));
}

/** `v` scaled in place to Euclidean length 1, summed in f64 (a zero vector stays zero). */
export function l2Normalize(v: Float32Array): Float32Array {
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += v[i] * v[i];
  const scale = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  for (let i = 0; i < v.length; i++) v[i] *= scale;
  return v;
}

/** A macrotask, not a microtask: timers and I/O run before the next chunk. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
