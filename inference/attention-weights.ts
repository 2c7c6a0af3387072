/**
 * The attention tensors a dense, MoE and gpt-oss layer name alike (llama.cpp's
 * attn_norm, attn_{q,k,v,output} and qwen2's Q/K/V biases); each
 * architecture's layerWeights adds its own around them.
 */
import type { LayerWeightsOf } from "./weights.ts";

export type AttentionWeightsOf<M, V> = Pick<
  LayerWeightsOf<M, V>,
  "attnNorm" | "wq" | "wk" | "wv" | "wo" | "bq" | "bk" | "bv"
>;

/** The attention weights of the layer whose names start with `p` (`blk.<l>.`). */
export function attentionWeights<M, V>(
  p: string,
  mat: (name: string) => M,
  vec: (name: string) => V | undefined,
): AttentionWeightsOf<M, V> {
  return {
    attnNorm: vec(p + "attn_norm.weight")!,
    wq: mat(p + "attn_q.weight"),
    wk: mat(p + "attn_k.weight"),
    wv: mat(p + "attn_v.weight"),
    wo: mat(p + "attn_output.weight"),
    bq: vec(p + "attn_q.bias"),
    bk: vec(p + "attn_k.bias"),
    bv: vec(p + "attn_v.bias"),
  };
}
