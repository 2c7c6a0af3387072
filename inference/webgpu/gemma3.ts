/**
 * gemma3's per-layer differences on the GPU, as on the CPU (inference/gemma3.ts): a local
 * layer's RoPE turns by its own table (rope.freq_base_swa, no scaling) and its attention sees
 * only the sliding window; queries take the model's own scale.
 */
import type { ModelConfig } from "../model-config.ts";
import { attentionWindow, isLocalLayer } from "../gemma3.ts";
import type { GpuModelWeights } from "./load-weights.ts";

/** The RoPE table and linear scale of local layer index `li` of `weights`. */
export function layerRope(
  config: ModelConfig,
  weights: GpuModelWeights,
  li: number,
): { table: GPUBuffer; ropeScale: number } {
  if (isLocalLayer(config, weights.layerStart + li) && weights.ropeTableLocal) {
    return { table: weights.ropeTableLocal, ropeScale: 1 };
  }
  return { table: weights.ropeTable, ropeScale: config.ropeScale };
}

/** The attention kernel's scale and window for local layer index `li` of `weights`. */
export function layerAttention(
  config: ModelConfig,
  weights: GpuModelWeights,
  li: number,
): { scale: number; window: number } {
  return {
    // Queries the model scales (gemma3, phi3) are scaled before attention on the CPU; here the
    // scores are, which differs only in rounding on an f32 cache.
    scale: config.attentionScale ?? 1 / Math.sqrt(config.headDim),
    window: attentionWindow(config, weights.layerStart + li),
  };
}
