/**
 * What gpt-oss (llama.cpp's LLM_ARCH_OPENAI_MOE, src/models/openai-moe.cpp) adds to a MoE
 * transformer: biases on q, k, v and the attention output, a learned attention sink per head
 * (attention.ts), a sliding window on alternating layers, the MoE block's input norm stored as
 * `post_attention_norm` (there is no `ffn_norm`), per-expert biases and the clamped
 * "swiglu_oai" activation of its experts (moe.ts), gated by a softmax over the top-k router
 * logits (moe-config.ts).
 */
import type { GgufFile, GgufValue } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import type { DenseArchConfig } from "./dense-config.ts";
import type { LayerWeightsOf, TensorPlan } from "./weights.ts";
import { moeLayerWeights, planMoeTensors } from "./moe-weights.ts";
import { attentionWeights } from "./attention-weights.ts";

// src/llama-graph.cpp LLM_FFN_SWIGLU_OAI_MOE: fixed, not read from the file.
const ALPHA = Math.fround(1.702);
const LIMIT = 7;

const f = Math.fround;

/**
 * gate = swiglu_oai(gate, up) over the first `count` values, in ggml's f32 steps
 * (ggml-cpu/ops.cpp ggml_compute_forward_swiglu_oai_f32): the gate clamped from above, the up
 * projection on both sides, x·σ(αx) · (y + 1).
 */
export function swigluOai(gate: Float32Array, up: Float32Array, count: number): void {
  for (let i = 0; i < count; i++) {
    const x = Math.min(gate[i], LIMIT);
    const y = Math.min(Math.max(up[i], -LIMIT), LIMIT);
    const glu = f(x / f(1 + f(Math.exp(f(ALPHA * -x)))));
    gate[i] = glu * f(y + 1);
  }
}

function wholeAt(meta: Record<string, GgufValue>, key: string): number | undefined {
  const v = meta[key];
  if (v === undefined) return undefined;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
    throw new Error(`model metadata "${key}" is ${v}; expected a whole number`);
  }
  return n;
}

/**
 * Which layers are local: a per-layer array of flags, or a period (llama.cpp's
 * set_swa_pattern: in each run of `period` layers all but the last are local; gpt-oss's
 * default 2 makes the even layers local).
 */
function localLayersOf(pattern: GgufValue | undefined, layers: number, key: string): boolean[] {
  if (Array.isArray(pattern)) {
    if (pattern.length !== layers) {
      throw new Error(`model metadata "${key}" has ${pattern.length} entries for ${layers} layers`);
    }
    return pattern.map((v) => v === true || v === 1 || v === 1n);
  }
  const period = pattern === undefined ? 2 : Number(pattern);
  if (!Number.isInteger(period) || period < 0) {
    throw new Error(`model metadata "${key}" is ${pattern}; expected a whole number`);
  }
  return Array.from({ length: layers }, (_, l) => period === 0 || l % period < period - 1);
}

/** gpt-oss's sliding window and its local layers, as load_arch_hparams reads them. */
export function gptOssConfigOf(
  meta: Record<string, GgufValue>,
  arch: string,
  layers: number,
): DenseArchConfig {
  if (arch !== "gpt-oss") return {};
  const k = (key: string) => `${arch}.${key}`;
  const window = wholeAt(meta, k("attention.sliding_window"));
  if (window === undefined) {
    throw new Error(`model metadata lacks "${k("attention.sliding_window")}"`);
  }
  const base = meta[k("rope.freq_base")], baseSwa = meta[k("rope.freq_base_swa")];
  if (baseSwa !== undefined && baseSwa !== base) {
    // llama.cpp would turn the local layers by their own base (with the global scaling).
    throw new Error(`${k("rope.freq_base_swa")} other than rope.freq_base is not supported`);
  }
  if (window === 0) return {};
  const key = k("attention.sliding_window_pattern");
  return { slidingWindow: window, localLayers: localLayersOf(meta[key], layers, key) };
}

/** Layer l's tensors: attention with biases and sinks, the MoE norm and experts. */
export function planGptOssLayer(file: GgufFile, config: ModelConfig, l: number): TensorPlan[] {
  const { dim, heads, kvHeads, headDim, valueDim } = config;
  const p = `blk.${l}.`;
  const plan: TensorPlan[] = [
    { name: p + "attn_norm.weight" },
    { name: p + "post_attention_norm.weight" },
    { name: p + "attn_q.weight", shape: [heads * headDim, dim], use: "layer" },
    { name: p + "attn_k.weight", shape: [kvHeads * headDim, dim], use: "layer" },
    { name: p + "attn_v.weight", shape: [kvHeads * valueDim, dim], use: "layer" },
    { name: p + "attn_output.weight", shape: [dim, heads * valueDim], use: "layer" },
    { name: p + "attn_output.bias" },
    { name: p + "attn_sinks.weight" },
  ];
  for (const t of ["attn_q.bias", "attn_k.bias", "attn_v.bias"]) {
    if (file.tensor(p + t)) plan.push({ name: p + t });
  }
  plan.push(...planMoeTensors(file, config, l));
  return plan;
}

/** Layer l's weights: its `post_attention_norm` is the MoE block's input norm. */
export function gptOssLayerWeights<M, V>(
  l: number,
  mat: (name: string) => M,
  vec: (name: string) => V | undefined,
): LayerWeightsOf<M, V> {
  const p = `blk.${l}.`;
  return {
    ...attentionWeights(p, mat, vec),
    bo: vec(p + "attn_output.bias"),
    sinks: vec(p + "attn_sinks.weight"),
    ffnNorm: vec(p + "post_attention_norm.weight")!,
    moe: moeLayerWeights(l, mat, vec),
  };
}
