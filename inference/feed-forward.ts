/** A layer's feed-forward block on the CPU, over the stacked rows of a step. */
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";
import { matMul, rmsNorm, siluMul } from "./primitives.ts";
import { gelu } from "./gelu.ts";
import { postNorm } from "./gemma3.ts";

/** Scratch buffers of one step's feed-forward, sized for its rows. */
export interface FeedForwardScratch {
  xb: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  proj: Float32Array;
}

export function feedForwardScratch(config: ModelConfig, n: number): FeedForwardScratch {
  return {
    xb: new Float32Array(n * config.dim),
    gate: new Float32Array(n * config.ffn),
    up: new Float32Array(n * config.ffn),
    proj: new Float32Array(n * config.dim),
  };
}

/** Norm, SwiGLU, down projection, residual add into `hidden`, for `n` rows. */
export function feedForwardBlock(
  config: ModelConfig,
  weights: ModelWeights,
  li: number,
  n: number,
  hidden: Float32Array,
  s: FeedForwardScratch,
): void {
  const { dim, ffn, normEps } = config;
  const w = weights.layers[li];
  const { xb, gate, up, proj } = s;
  for (let t = 0; t < n; t++) rmsNorm(xb, hidden, w.ffnNorm, normEps, dim, t * dim);
  matMul(w.wGate!, xb, n, gate);
  matMul(w.wUp!, xb, n, up, true);
  if (config.activation === "gelu") {
    for (let i = 0; i < n * ffn; i++) gate[i] = gelu(gate[i]) * up[i];
  } else {
    siluMul(gate, up, n * ffn);
  }
  matMul(w.wDown!, gate, n, proj);
  postNorm(proj, w.ffnPostNorm, normEps, n, dim);
  for (let i = 0; i < n * dim; i++) hidden[i] += proj[i];
}
