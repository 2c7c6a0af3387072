/**
 * Small random-weight `qwen35moe` models (Qwen3.5 MoE: gated delta net linear-attention layers,
 * every `fullAttentionInterval`-th layer gated full attention, a routed MoE FFN with a gated
 * shared expert after each), laid out as llama.cpp loads them (src/models/qwen35moe.cpp).
 *
 * Two weight mixes, as published GGUFs have them:
 * - "F16": every matrix F16 except those llama.cpp's converter keeps F32 (the router
 *   `ffn_gate_inp` and `ssm_conv1d`); vectors F32.
 * - "Q4_K_M": what llama_tensor_get_type (src/llama-quant.cpp) picks for LLAMA_FTYPE_MOSTLY_Q4_K_M
 *   on an 8-expert model: output Q6_K; attn_k, attn_v and attn_qkv Q8_0 (the 8-expert rule);
 *   attn_output Q5_K; ffn_down_exps / ffn_down_shexp Q6_K where use_more_bits(layer, layers)
 *   (the last two of four layers), else Q4_K; every other matrix Q4_K (token_embd, attn_q,
 *   attn_gate, ssm_alpha, ssm_beta, ssm_out, the expert and shared gate/up); the router and
 *   ssm_conv1d stay F32 (never quantized).
 */
import { GgmlType } from "../../inference/mod.ts";
import { f32, type MetaValue, type TensorSpec, u32, writeGguf } from "./gguf-writer.ts";
import { drawnTensors, readVocab, type TensorPlan, type TestModelOptions } from "./test-models.ts";
import { useMoreBits } from "./quantize-gguf.ts";

export type Qwen35Mix = "F16" | "Q4_K_M";

export interface Qwen35ModelOptions {
  mix: Qwen35Mix;
  dim: number;
  layers: number;
  fullAttentionInterval: number; // layer i is full attention when (i + 1) % interval == 0
  heads: number;
  kvHeads: number;
  headDim: number;
  ropeDim: number;
  ropeSections: [number, number, number, number];
  experts: number;
  expertsUsed: number;
  expertFfn: number;
  sharedFfn: number;
  convKernel: number;
  kHeads: number; // ssm.group_count
  vHeads: number; // ssm.time_step_rank
  stateDim: number; // ssm.state_size: the width of one linear-attention head
  seed: number;
  contextLength?: number;
  vocabFrom?: string;
  /**
   * Blocks after `layers` holding a multi-token-prediction head (nextn_predict_layers), as
   * llama.cpp's converter now writes Qwen3.5 files: neither llama.cpp's main pass nor Grove runs
   * them.
   */
  mtpLayers?: number;
}

/**
 * The shape the agreement tests use: four layers (three linear, then one full attention, the
 * real models' interval), 8 experts with 2 used, value heads twice the key heads, and a partial
 * RoPE (16 of 64) whose sections cover it, as Qwen3.5's [11, 11, 10, 0] cover 64 of 256. Rows
 * of every quantized matrix are multiples of 256 (Q4_K's block).
 */
export const QWEN35_TEST_SHAPE: Omit<Qwen35ModelOptions, "mix" | "seed"> = {
  dim: 256,
  layers: 4,
  fullAttentionInterval: 4,
  heads: 4,
  kvHeads: 2,
  headDim: 64,
  ropeDim: 16,
  ropeSections: [3, 3, 2, 0],
  experts: 8,
  expertsUsed: 2,
  expertFfn: 256,
  sharedFfn: 256,
  convKernel: 4,
  kHeads: 4,
  vHeads: 8,
  stateDim: 32,
};

/**
 * IMROPE sections [t, h, w, 0] over `ropeDim / 2` pairs that rotate every pair with text
 * positions, as Qwen3.5's [11, 11, 10, 0] over 32 do (recurrent-config.ts checks this).
 */
export function coveringSections(ropeDim: number): [number, number, number, number] {
  const pairs = ropeDim / 2;
  const t = Math.ceil(pairs / 3), h = Math.floor((pairs + 1) / 3);
  return [t, h, pairs - t - h, 0];
}

/**
 * A qwen35moe model from the generic test-model options (test-models.ts dispatches here): their
 * widths, heads and layer count; the expert and shared widths are `ffn`; RoPE a quarter of the
 * head; the linear-attention shape QWEN35_TEST_SHAPE's. F16 gives the F16 mix, any other type
 * the Q4_K_M mix.
 */
export function qwen35OptionsOf(o: TestModelOptions): Qwen35ModelOptions {
  const headDim = o.headDim ?? o.dim / o.heads;
  const ropeDim = Math.max(2, 2 * Math.floor(headDim / 8));
  return {
    ...QWEN35_TEST_SHAPE,
    mix: o.type === GgmlType.F16 ? "F16" : "Q4_K_M",
    dim: o.dim,
    layers: o.layers,
    heads: o.heads,
    kvHeads: o.kvHeads,
    headDim,
    ropeDim,
    ropeSections: coveringSections(ropeDim),
    expertFfn: o.ffn,
    sharedFfn: o.ffn,
    seed: o.seed,
    contextLength: o.contextLength,
    vocabFrom: o.vocabFrom,
  };
}

export function isFullAttentionLayer(o: Qwen35ModelOptions, layer: number): boolean {
  return (layer + 1) % o.fullAttentionInterval === 0;
}

interface Qwen35Plan extends TensorPlan {
  type: GgmlType;
}

/** The type of a matrix in the mix (see the file comment); `role` is its tensor name sans blk. */
function matrixType(o: Qwen35ModelOptions, role: string, layer: number): GgmlType {
  if (o.mix === "F16") return GgmlType.F16;
  if (role === "output") return GgmlType.Q6_K;
  if (role === "attn_k" || role === "attn_v" || role === "attn_qkv") return GgmlType.Q8_0;
  if (role === "attn_output") return GgmlType.Q5_K;
  if (role === "ffn_down_exps" || role === "ffn_down_shexp") {
    return useMoreBits(layer, o.layers) ? GgmlType.Q6_K : GgmlType.Q4_K;
  }
  return GgmlType.Q4_K;
}

/** The tensors, in file order, with shapes (ggml order), value ranges and types. */
export function planQwen35Tensors(o: Qwen35ModelOptions, vocabSize = 512): Qwen35Plan[] {
  const plans: Qwen35Plan[] = [];
  // Branches into the residual stream are damped by depth, as in test-models.ts.
  const branch = 1 / Math.sqrt(2 * o.layers);
  const mat = (name: string, layer: number, dims: number[], scale = 1 / Math.sqrt(dims[0])) => {
    const role = name.replace(/^blk\.\d+\./, "").replace(/\.weight$/, "");
    plans.push({
      name,
      dims,
      matrix: true,
      centre: 0,
      scale,
      type: matrixType(o, role, layer),
    });
  };
  const vec = (name: string, dims: number[], centre: number, scale: number) =>
    plans.push({ name, dims, matrix: false, centre, scale, type: GgmlType.F32 });

  mat("token_embd.weight", -1, [o.dim, vocabSize], 1);
  const q = o.heads * o.headDim, kv = o.kvHeads * o.headDim;
  const keyDim = o.kHeads * o.stateDim, valueDim = o.vHeads * o.stateDim;
  const convDim = 2 * keyDim + valueDim;
  // The blocks the layers and the MTP block share; `damp` scales what they add to the residual
  // stream (the MTP block's outputs are not damped).
  const attention = (b: string, l: number, damp: number) => {
    // Query and output gate interleaved per head: [q_h (headDim), gate_h (headDim)].
    mat(`${b}.attn_q.weight`, l, [o.dim, 2 * q]);
    mat(`${b}.attn_k.weight`, l, [o.dim, kv]);
    mat(`${b}.attn_v.weight`, l, [o.dim, kv]);
    mat(`${b}.attn_output.weight`, l, [q, o.dim], damp / Math.sqrt(q));
    vec(`${b}.attn_q_norm.weight`, [o.headDim], 1, 0.1);
    vec(`${b}.attn_k_norm.weight`, [o.headDim], 1, 0.1);
  };
  const moe = (b: string, l: number, damp: number) => {
    // The router is never quantized; a wide spread keeps top-k choices clear of near-ties.
    plans.push({
      name: `${b}.ffn_gate_inp.weight`,
      dims: [o.dim, o.experts],
      matrix: false,
      centre: 0,
      scale: 2 / Math.sqrt(o.dim),
      type: GgmlType.F32,
    });
    mat(`${b}.ffn_gate_exps.weight`, l, [o.dim, o.expertFfn, o.experts]);
    mat(`${b}.ffn_up_exps.weight`, l, [o.dim, o.expertFfn, o.experts]);
    mat(
      `${b}.ffn_down_exps.weight`,
      l,
      [o.expertFfn, o.dim, o.experts],
      damp / Math.sqrt(o.expertFfn),
    );
    vec(`${b}.ffn_gate_inp_shexp.weight`, [o.dim], 0, 1 / Math.sqrt(o.dim));
    mat(`${b}.ffn_gate_shexp.weight`, l, [o.dim, o.sharedFfn]);
    mat(`${b}.ffn_up_shexp.weight`, l, [o.dim, o.sharedFfn]);
    mat(`${b}.ffn_down_shexp.weight`, l, [o.sharedFfn, o.dim], damp / Math.sqrt(o.sharedFfn));
  };
  for (let l = 0; l < o.layers; l++) {
    const b = `blk.${l}`;
    vec(`${b}.attn_norm.weight`, [o.dim], 1, 0.1);
    if (isFullAttentionLayer(o, l)) {
      attention(b, l, branch);
    } else {
      mat(`${b}.attn_qkv.weight`, l, [o.dim, convDim]);
      mat(`${b}.attn_gate.weight`, l, [o.dim, valueDim]);
      // Decay exp(g) = exp(softplus(α + dt) · A) of ~0.5–0.95 per token, as trained models have.
      plans.push({
        name: `${b}.ssm_conv1d.weight`,
        dims: [o.convKernel, convDim],
        matrix: false,
        centre: 0,
        scale: 0.4,
        type: GgmlType.F32,
      });
      vec(`${b}.ssm_dt.bias`, [o.vHeads], -2, 0.5);
      vec(`${b}.ssm_a`, [o.vHeads], -2, 0.5);
      mat(`${b}.ssm_beta.weight`, l, [o.dim, o.vHeads]);
      mat(`${b}.ssm_alpha.weight`, l, [o.dim, o.vHeads]);
      vec(`${b}.ssm_norm.weight`, [o.stateDim], 1, 0.1);
      mat(`${b}.ssm_out.weight`, l, [valueDim, o.dim], branch / Math.sqrt(valueDim));
    }
    vec(`${b}.post_attention_norm.weight`, [o.dim], 1, 0.1);
    moe(b, l, branch);
  }
  for (let l = o.layers; l < o.layers + (o.mtpLayers ?? 0); l++) {
    // llama.cpp's load_block_mtp: a full-attention block with the MoE FFN, and the nextn head.
    const b = `blk.${l}`;
    vec(`${b}.attn_norm.weight`, [o.dim], 1, 0.1);
    attention(b, l, 1);
    vec(`${b}.post_attention_norm.weight`, [o.dim], 1, 0.1);
    moe(b, l, 1);
    mat(`${b}.nextn.eh_proj.weight`, l, [2 * o.dim, o.dim]);
    vec(`${b}.nextn.enorm.weight`, [o.dim], 1, 0.1);
    vec(`${b}.nextn.hnorm.weight`, [o.dim], 1, 0.1);
    vec(`${b}.nextn.shared_head_norm.weight`, [o.dim], 1, 0.1);
  }
  vec("output_norm.weight", [o.dim], 1, 0.1);
  mat("output.weight", -1, [o.dim, vocabSize], 3 / Math.sqrt(o.dim));
  return plans;
}

function metadataFor(o: Qwen35ModelOptions) {
  const a = "qwen35moe";
  const m: Record<string, MetaValue> = {
    "general.architecture": a,
    "general.name": `grove-test-${a}-${o.mix}`,
    "general.file_type": u32(o.mix === "F16" ? 1 : 15), // LLAMA_FTYPE_MOSTLY_F16 / _Q4_K_M
  };
  if (o.mix !== "F16") m["general.quantization_version"] = u32(2);
  const k = (key: string) => `${a}.${key}`;
  m[k("context_length")] = u32(o.contextLength ?? 512);
  m[k("embedding_length")] = u32(o.dim);
  m[k("block_count")] = u32(o.layers + (o.mtpLayers ?? 0));
  if (o.mtpLayers) m[k("nextn_predict_layers")] = u32(o.mtpLayers);
  m[k("feed_forward_length")] = u32(o.expertFfn);
  m[k("attention.head_count")] = u32(o.heads);
  m[k("attention.head_count_kv")] = u32(o.kvHeads);
  m[k("attention.key_length")] = u32(o.headDim);
  m[k("attention.value_length")] = u32(o.headDim);
  m[k("attention.layer_norm_rms_epsilon")] = f32(1e-6);
  m[k("rope.freq_base")] = f32(10000000);
  m[k("rope.dimension_count")] = u32(o.ropeDim);
  m[k("rope.dimension_sections")] = Int32Array.from(o.ropeSections);
  m[k("expert_count")] = u32(o.experts);
  m[k("expert_used_count")] = u32(o.expertsUsed);
  m[k("expert_feed_forward_length")] = u32(o.expertFfn);
  m[k("expert_shared_feed_forward_length")] = u32(o.sharedFfn);
  m[k("ssm.conv_kernel")] = u32(o.convKernel);
  m[k("ssm.state_size")] = u32(o.stateDim);
  m[k("ssm.group_count")] = u32(o.kHeads);
  m[k("ssm.time_step_rank")] = u32(o.vHeads);
  m[k("ssm.inner_size")] = u32(o.vHeads * o.stateDim);
  m[k("full_attention_interval")] = u32(o.fullAttentionInterval);
  return m;
}

export async function buildQwen35Model(
  o: Qwen35ModelOptions,
): Promise<{ metadata: Record<string, MetaValue>; tensors: TensorSpec[] }> {
  if (o.vHeads % o.kHeads !== 0) throw new Error("vHeads must be a multiple of kHeads");
  const { vocab, size } = await readVocab(o.vocabFrom);
  const tensors = drawnTensors(planQwen35Tensors(o, size), (p) => p.type, o.seed);
  return { metadata: { ...metadataFor(o), ...vocab }, tensors };
}

export async function writeQwen35Model(path: string, o: Qwen35ModelOptions): Promise<void> {
  await writeGguf(path, await buildQwen35Model(o));
}
