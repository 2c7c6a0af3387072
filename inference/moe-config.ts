/**
 * The mixture-of-experts part of a model's config, read from GGUF metadata with llama.cpp's key
 * names (`{arch}.expert_count`, `{arch}.expert_used_count`, ...). How the router's weights are
 * made (gating, normalization) is fixed per architecture in llama.cpp's graphs
 * (src/models/<arch>.cpp), not read from the file, so it is fixed per architecture here too.
 */
import type { GgufValue } from "./gguf.ts";
import { metaCount } from "./metadata-numbers.ts";

/**
 * How the router's logits become the chosen experts' weights (llama.cpp's
 * llama_expert_gating_func_type): "softmax" over all experts then top-k (qwen2moe, qwen3moe),
 * "sigmoid" of each logit then top-k, "softmax-after-topk" top-k of the raw logits then a
 * softmax over the k chosen (gpt-oss).
 */
export type MoeGating = "softmax" | "sigmoid" | "softmax-after-topk";

export interface MoeConfig {
  experts: number; // experts per layer
  used: number; // experts each token is routed to (top-k)
  expertFfn: number; // hidden width of one expert's SwiGLU
  sharedFfn?: number; // hidden width of the always-on shared expert (qwen2moe), if any
  gating: MoeGating;
  normalizeTopK: boolean; // the k weights are divided by their sum (qwen3moe)
  weightsScale?: number; // the k weights are multiplied by it (DeepSeek-style), 1 if absent
  /**
   * The experts' gated activation: SwiGLU when absent; "swiglu-oai" is gpt-oss's clamped
   * variant (ggml_swiglu_oai with alpha 1.702, limit 7).
   */
  activation?: "swiglu-oai";
}

/** Per architecture: what llama.cpp's graph passes to build_moe_ffn. */
const MOE_ARCHES: Record<
  string,
  { normalizeTopK: boolean; shared: boolean; gating?: MoeGating; activation?: "swiglu-oai" }
> = {
  qwen2moe: { normalizeTopK: false, shared: true },
  qwen3moe: { normalizeTopK: true, shared: false },
  qwen35moe: { normalizeTopK: true, shared: true }, // src/models/qwen35moe.cpp build_layer_ffn
  // src/models/openai-moe.cpp: LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT, LLM_FFN_SWIGLU_OAI_MOE.
  "gpt-oss": {
    normalizeTopK: false,
    shared: false,
    gating: "softmax-after-topk",
    activation: "swiglu-oai",
  },
};

export function isMoeArchitecture(arch: string): boolean {
  return arch in MOE_ARCHES;
}

/**
 * The MoE config of a model of architecture `arch`, or undefined for a dense one. `ffn` is the
 * model's feed_forward_length: llama.cpp's fallback for the expert width (ffn / used) and the
 * shared expert's (ffn).
 */
export function moeConfigOf(
  meta: Record<string, GgufValue>,
  arch: string,
  ffn: number,
  maxWidth: number,
): MoeConfig | undefined {
  const kind = MOE_ARCHES[arch];
  if (!kind) return undefined;
  const k = (key: string) => `${arch}.${key}`;
  // More experts than this and the per-layer router alone would outweigh any real model.
  const experts = metaCount(meta, k("expert_count"), 1 << 16);
  const used = metaCount(meta, k("expert_used_count"), experts);
  const expertFfn = metaCount(
    meta,
    k("expert_feed_forward_length"),
    maxWidth,
    Math.floor(ffn / used) || undefined,
  );
  const moe: MoeConfig = {
    experts,
    used,
    expertFfn,
    gating: kind.gating ?? "softmax",
    normalizeTopK: kind.normalizeTopK,
  };
  if (kind.activation) moe.activation = kind.activation;
  if (kind.shared) {
    moe.sharedFfn = metaCount(meta, k("expert_shared_feed_forward_length"), maxWidth, ffn);
  }
  return moe;
}
