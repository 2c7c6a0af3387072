/**
 * The tensors of a hybrid model's layers (qwen35moe, src/models/qwen35moe.cpp load_arch_tensors):
 * every layer has attn_norm and post_attention_norm (the norm before the MoE feed-forward, which
 * Grove holds as ffnNorm) and the MoE tensors (moe-weights.ts); a linear-attention layer has the
 * gated delta net's attn_qkv, attn_gate and ssm_* tensors, a full-attention layer attn_q (query
 * and output gate per head, twice the usual rows), attn_k, attn_v, attn_output and the per-head
 * Q/K norms.
 */
import type { GgufFile } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import type { LayerWeightsOf, TensorPlan } from "./weights.ts";
import type { LinearAttentionWeightsOf } from "./delta-net.ts";
import { moeLayerWeights, planMoeTensors } from "./moe-weights.ts";

/** Layer l's tensors, in load order (what planTensors plans for a hybrid model's layer). */
export function planHybridLayer(file: GgufFile, config: ModelConfig, l: number): TensorPlan[] {
  const r = config.recurrent!;
  const { dim, heads, kvHeads, headDim, valueDim } = config;
  const p = `blk.${l}.`;
  const plan: TensorPlan[] = [
    { name: p + "attn_norm.weight" },
    { name: p + "post_attention_norm.weight" },
  ];
  const matrix = (t: string, rows: number, cols: number) =>
    plan.push({ name: `${p}${t}.weight`, shape: [rows, cols], use: "layer" });
  if (r.recurrentLayers[l]) {
    const vDim = r.vHeads * r.headDim;
    matrix("attn_qkv", r.convDim, dim);
    matrix("attn_gate", vDim, dim);
    matrix("ssm_beta", r.vHeads, dim);
    matrix("ssm_alpha", r.vHeads, dim);
    matrix("ssm_out", dim, vDim);
    plan.push(
      { name: p + "ssm_conv1d.weight" },
      { name: p + "ssm_dt.bias" },
      { name: p + "ssm_a" },
      { name: p + "ssm_norm.weight" },
    );
  } else {
    matrix("attn_q", 2 * heads * headDim, dim);
    matrix("attn_k", kvHeads * headDim, dim);
    matrix("attn_v", kvHeads * valueDim, dim);
    matrix("attn_output", dim, heads * valueDim);
    plan.push({ name: p + "attn_q_norm.weight" }, { name: p + "attn_k_norm.weight" });
  }
  plan.push(...planMoeTensors(file, config, l));
  return plan;
}

/**
 * Layer l's weights by their GGUF names. A linear-attention layer holds `linear` and no
 * attention matrices: wq, wk, wv and wo are absent there (the layer loop never reads them).
 */
export function hybridLayerWeights<M, V>(
  config: ModelConfig,
  l: number,
  mat: (name: string) => M,
  vec: (name: string) => V | undefined,
): LayerWeightsOf<M, V> {
  const p = `blk.${l}.`;
  const common = {
    attnNorm: vec(p + "attn_norm.weight")!,
    ffnNorm: vec(p + "post_attention_norm.weight")!,
    moe: moeLayerWeights(l, mat, vec),
  };
  if (!config.recurrent!.recurrentLayers[l]) {
    return {
      ...common,
      wq: mat(p + "attn_q.weight"),
      wk: mat(p + "attn_k.weight"),
      wv: mat(p + "attn_v.weight"),
      wo: mat(p + "attn_output.weight"),
      qNorm: vec(p + "attn_q_norm.weight"),
      kNorm: vec(p + "attn_k_norm.weight"),
    };
  }
  const linear: LinearAttentionWeightsOf<M, V> = {
    wqkv: mat(p + "attn_qkv.weight"),
    wz: mat(p + "attn_gate.weight"),
    conv: vec(p + "ssm_conv1d.weight")!,
    dtBias: vec(p + "ssm_dt.bias")!,
    a: vec(p + "ssm_a")!,
    wBeta: mat(p + "ssm_beta.weight"),
    wAlpha: mat(p + "ssm_alpha.weight"),
    norm: vec(p + "ssm_norm.weight")!,
    wOut: mat(p + "ssm_out.weight"),
  };
  const none = undefined as unknown as M;
  return { ...common, wq: none, wk: none, wv: none, wo: none, linear };
}
