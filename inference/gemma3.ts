/**
 * What gemma3's layers do differently on the CPU (llama.cpp src/models/gemma3.cpp): local layers
 * attend over a sliding window with their own RoPE base and no RoPE scaling, queries are scaled
 * before attention (phi3's too), and each block's output is RMS-normed (post_attention_norm,
 * post_ffw_norm) before its residual add.
 */
import type { ModelConfig } from "./model-config.ts";
import { rmsNorm } from "./primitives.ts";
import { NO_ROPE_SCALING } from "./rope-scaling.ts";

/** Whether `layer` (a whole-model index) attends only over the sliding window. */
export function isLocalLayer(config: ModelConfig, layer: number): boolean {
  return config.slidingWindow !== undefined && config.localLayers?.[layer] === true;
}

/** The window of `layer`'s attention: positions a query sees, itself included; 0 for all. */
export function attentionWindow(config: ModelConfig, layer: number): number {
  return isLocalLayer(config, layer) ? config.slidingWindow! : 0;
}

// One config object per model: rope.ts caches its angle constants per config object.
const localRope = new WeakMap<ModelConfig, ModelConfig>();

/**
 * The config `layer`'s RoPE turns by: a local layer's base is rope.freq_base_swa and it takes
 * no scaling (llama.cpp's rope_freq_scale_train_swa is 1, never read from the file).
 */
export function ropeConfigOf(config: ModelConfig, layer: number): ModelConfig {
  if (!isLocalLayer(config, layer) || config.ropeBaseLocal === undefined) return config;
  let local = localRope.get(config);
  if (!local) {
    // A config without a scaling field (older callers) has only ropeScale to reset.
    const none = "ropeScaling" in config ? { ropeScaling: NO_ROPE_SCALING } : {};
    local = { ...config, ropeBase: config.ropeBaseLocal, ropeScale: 1, ...none };
    localRope.set(config, local);
  }
  return local;
}

/** Multiplies a row of queries by the model's query scale, where it has one (ggml_scale on Q). */
export function scaleQueries(config: ModelConfig, q: Float32Array, offset: number, n: number) {
  const scale = config.attentionScale;
  if (scale === undefined) return;
  for (let i = offset; i < offset + n; i++) q[i] *= scale;
}

/** RMS-norms each of the `n` rows (`dim` wide) of a block's output in place, when `w` is given. */
export function postNorm(
  out: Float32Array,
  w: Float32Array | undefined,
  eps: number,
  n: number,
  dim: number,
): void {
  if (!w) return;
  for (let t = 0; t < n; t++) rmsNorm(out, out, w, eps, dim, t * dim);
}
