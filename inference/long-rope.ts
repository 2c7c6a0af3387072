/**
 * phi3's LongRoPE (Phi-3.5, Phi-4-mini): two sets of per-pair RoPE factors, `rope_factors_long`
 * and `rope_factors_short`, chosen by the sequence's context as llama.cpp's get_rope_factors
 * does (long past the original context, short within it); cos and sin take the file's
 * `rope.scaling.attn_factor` (rope-scaling.ts).
 */
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";

/** The RoPE factors a sequence of `ctxSize` positions turns by, if the model has any. */
export function ropeFactorsFor(
  config: ModelConfig,
  weights: ModelWeights,
  ctxSize: number,
): Float32Array | undefined {
  return weights.ropeFreqFactors ??
    longRopeFactors(config, ctxSize, weights.ropeFactorsLong, weights.ropeFactorsShort);
}

/** Of LongRoPE's two sets, the one a context of `ctxSize` positions takes. */
export function longRopeFactors(
  config: ModelConfig,
  ctxSize: number,
  long?: Float32Array,
  short?: Float32Array,
): Float32Array | undefined {
  return ctxSize > config.ropeScaling.originalContext ? long : short;
}
