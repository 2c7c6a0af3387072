/**
 * One step of the CPU reference path over a whole model, as the cache tests drive it by hand:
 * embed `tokens`, run every layer in `state`, and read the last row's logits.
 */
import type { ModelConfig } from "../../inference/model-config.ts";
import type { ModelWeights } from "../../inference/weights.ts";
import type { RunState } from "../../inference/attention.ts";
import { embedTokens, forwardLayers, outputLogits } from "../../inference/reference.ts";

export function stepLogits(
  model: { config: ModelConfig; weights: ModelWeights },
  state: RunState,
  tokens: readonly number[],
): Float32Array {
  const { config, weights } = model;
  const hidden = embedTokens(config, weights, tokens);
  forwardLayers(config, weights, state, hidden, tokens.length);
  return outputLogits(config, weights, hidden, tokens.length - 1);
}
