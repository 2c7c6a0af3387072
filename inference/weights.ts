/**
 * Loads the weights of a layer range from a GGUF file, tensor by tensor,
 * keeping matrices in their stored (possibly quantized) form.
 */
import { GgmlType, ggmlTypeName, isSupportedWeightType } from "./ggml-type.ts";
import { type GgufFile, type GgufTensorInfo, readTensorData } from "./gguf.ts";
import { dequantize, wasmWeightBytes } from "./quant/mod.ts";
import type { ModelConfig } from "./model-config.ts";
import { fusedPart } from "./fused-tensors.ts";
import { moeLayerWeights, type MoeWeightsOf, planMoeTensors } from "./moe-weights.ts";
import type { LinearAttentionWeightsOf } from "./delta-net.ts";
import { hybridLayerWeights, planHybridLayer } from "./hybrid-weights.ts";
import { gptOssLayerWeights, planGptOssLayer } from "./gpt-oss.ts";
import { attentionWeights } from "./attention-weights.ts";

export type { MoeWeightsOf } from "./moe-weights.ts";

/** A 2-D weight: `rows` rows of `cols` values each, in ggml's row-major block layout. */
export interface Matrix {
  name: string;
  type: GgmlType;
  rows: number;
  cols: number;
  data: Uint8Array;
}

/** One layer's weights, whatever holds them: M a matrix, V a vector (host or device). */
export interface LayerWeightsOf<M, V> {
  attnNorm: V; // (dim)
  wq: M; // (heads*headDim, dim)
  wk: M; // (kvHeads*headDim, dim)
  wv: M; // (kvHeads*valueDim, dim)
  wo: M; // (dim, heads*valueDim)
  bq?: V; // (heads*headDim) qwen2
  bk?: V; // (kvHeads*headDim)
  bv?: V; // (kvHeads*valueDim)
  bo?: V; // (dim) gpt-oss: bias of the attention output
  sinks?: V; // (heads) gpt-oss: each head's learned attention-sink logit
  qNorm?: V; // (headDim) qwen3, per-head RMSNorm of queries
  kNorm?: V; // (headDim)
  ffnNorm: V; // (dim)
  attnPostNorm?: V; // (dim) gemma3: RMSNorm of the attention output before the residual add
  ffnPostNorm?: V; // (dim) gemma3: RMSNorm of the feed-forward output before the residual add
  // The dense SwiGLU feed-forward, or `moe` instead.
  wGate?: M; // (ffn, dim)
  wUp?: M; // (ffn, dim)
  wDown?: M; // (dim, ffn)
  moe?: MoeWeightsOf<M, V>;
  // qwen35moe's linear-attention layers (hybrid-weights.ts): a gated delta net instead of wq..wo.
  linear?: LinearAttentionWeightsOf<M, V>;
}

export type LayerWeights = LayerWeightsOf<Matrix, Float32Array>;

/**
 * Layer l's weights by their GGUF names: `mat` and `vec` look up what was
 * loaded (planTensors names every required tensor, so only the optional
 * vectors may be missing). `moe`: the layer's feed-forward is a mixture of experts.
 */
export function layerWeights<M, V>(
  l: number,
  mat: (name: string) => M,
  vec: (name: string) => V | undefined,
  moe = false,
): LayerWeightsOf<M, V> {
  const p = `blk.${l}.`;
  return {
    ...attentionWeights(p, mat, vec),
    qNorm: vec(p + "attn_q_norm.weight"),
    kNorm: vec(p + "attn_k_norm.weight"),
    ffnNorm: vec(p + "ffn_norm.weight")!,
    attnPostNorm: vec(p + "post_attention_norm.weight"),
    ffnPostNorm: vec(p + "post_ffw_norm.weight"),
    ...(moe ? { moe: moeLayerWeights(l, mat, vec) } : {
      wGate: mat(p + "ffn_gate.weight"),
      wUp: mat(p + "ffn_up.weight"),
      wDown: mat(p + "ffn_down.weight"),
    }),
  };
}

/** The weights one engine holds: the layers [layerStart, layerEnd) and, at the ends, embedding and head. */
export interface ModelWeights {
  layerStart: number;
  layerEnd: number;
  tokenEmbedding?: Matrix; // (vocab, dim), present on the first stage
  layers: LayerWeights[]; // layers[i] is layer layerStart + i
  outputNorm?: Float32Array; // (dim), present on the last stage
  output?: Matrix; // (vocab, dim); the token embedding when tied
  ropeFreqFactors?: Float32Array; // (ropeDim/2) Llama 3.1 style long-context factors
  ropeFactorsLong?: Float32Array; // (ropeDim/2) phi3 LongRoPE, past the original context
  ropeFactorsShort?: Float32Array; // (ropeDim/2) phi3 LongRoPE, within it
}

export interface LoadOptions {
  layerStart?: number;
  layerEnd?: number;
  onTensor?: (name: string, loaded: number, total: number) => void;
}

/** The tensor `name` of `file`, or an error naming both. */
export function needTensor(file: GgufFile, name: string): GgufTensorInfo {
  const info = fusedPart(file, name) ?? file.tensor(name);
  if (!info) throw new Error(`${file.path}: tensor "${name}" is missing`);
  return info;
}

/** A matrix of `rows` rows (checkShape has checked the tensor's dims). */
async function loadMatrix(file: GgufFile, info: GgufTensorInfo, rows: number): Promise<Matrix> {
  if (!isSupportedWeightType(info.type)) {
    throw new Error(
      `${file.path}: tensor "${info.name}" has type ${
        ggmlTypeName(info.type)
      }, which Grove cannot compute with yet`,
    );
  }
  return {
    name: info.name,
    type: info.type,
    cols: info.dims[0],
    rows,
    // Read into the WASM kernels' memory where they take the type: held once, read in place.
    data: await readTensorData(
      file,
      info,
      wasmWeightBytes(info.type, info.byteLength) ?? undefined,
    ),
  };
}

async function loadVector(file: GgufFile, info: GgufTensorInfo): Promise<Float32Array> {
  const n = info.dims.reduce((a, b) => a * b, 1);
  return dequantize(info.type, await readTensorData(file, info), n);
}

/** What a matrix is used for: it decides which kernels must accept its type and width. */
export type TensorUse = "layer" | "head" | "embed" | "embed+head";

/**
 * One tensor a layer range needs: matrices have a [rows, cols] shape and a use; a 3-D stack of
 * `experts` such matrices (MoE) is held as one matrix of experts · rows rows.
 */
export interface TensorPlan {
  name: string;
  shape?: [number, number];
  experts?: number;
  use?: TensorUse;
}

/**
 * The tensors that the layers [layerStart, layerEnd) need, in load order: the embedding on the
 * first stage (and on the last when the head is tied to it), the head on the last, each
 * layer's norms and matrices, and the optional ones (biases, Q/K norms, RoPE factors) the
 * file has.
 */
export function planTensors(
  file: GgufFile,
  config: ModelConfig,
  layerStart = 0,
  layerEnd = config.layers,
): TensorPlan[] {
  if (layerStart < 0 || layerEnd > config.layers || layerStart >= layerEnd) {
    throw new Error(`layer range [${layerStart}, ${layerEnd}) is outside 0..${config.layers}`);
  }
  const first = layerStart === 0;
  const last = layerEnd === config.layers;
  const tied = last && !file.tensor("output.weight");
  const { dim, heads, kvHeads, headDim, valueDim, ffn, vocabSize } = config;
  const plan: TensorPlan[] = [];
  const optional = (name: string) => file.tensor(name) && plan.push({ name });
  if (first || tied) {
    const use = first && tied ? "embed+head" : first ? "embed" : "head";
    plan.push({ name: "token_embd.weight", shape: [vocabSize, dim], use });
  }
  if (last) {
    plan.push({ name: "output_norm.weight" });
    if (!tied) plan.push({ name: "output.weight", shape: [vocabSize, dim], use: "head" });
  }
  optional("rope_freqs.weight"); // every layer's RoPE needs the factors
  // phi3's LongRoPE factors (long-rope.ts picks one set by each sequence's context).
  optional("rope_factors_long.weight");
  optional("rope_factors_short.weight");
  for (let l = layerStart; l < layerEnd; l++) {
    if (config.recurrent) {
      plan.push(...planHybridLayer(file, config, l));
      continue;
    }
    if (config.arch === "gpt-oss") {
      plan.push(...planGptOssLayer(file, config, l));
      continue;
    }
    const p = `blk.${l}.`;
    plan.push({ name: p + "attn_norm.weight" }, { name: p + "ffn_norm.weight" });
    const matrices: [string, number, number][] = [
      ["attn_q", heads * headDim, dim],
      ["attn_k", kvHeads * headDim, dim],
      ["attn_v", kvHeads * valueDim, dim],
      ["attn_output", dim, heads * valueDim],
    ];
    if (!config.moe) {
      matrices.push(["ffn_gate", ffn, dim], ["ffn_up", ffn, dim], ["ffn_down", dim, ffn]);
    }
    for (const [t, rows, cols] of matrices) {
      plan.push({ name: `${p}${t}.weight`, shape: [rows, cols], use: "layer" });
    }
    for (const t of ["attn_q.bias", "attn_k.bias", "attn_v.bias"]) optional(p + t);
    for (const t of ["attn_q_norm.weight", "attn_k_norm.weight"]) {
      // qwen3 needs them; other architectures take them when the file has them.
      if (config.qkNorm) plan.push({ name: p + t });
      else optional(p + t);
    }
    for (const t of ["post_attention_norm.weight", "post_ffw_norm.weight"]) {
      if (config.arch === "gemma3") plan.push({ name: p + t });
      else optional(p + t);
    }
    if (config.moe) plan.push(...planMoeTensors(file, config, l));
  }
  return plan;
}

/**
 * Checks a matrix tensor against the [rows, cols] the config needs (a stack of `experts` of
 * them when given), and returns the rows it is held as.
 */
export function checkShape(
  info: GgufTensorInfo,
  [rows, cols]: [number, number],
  experts?: number,
): number {
  const want = experts === undefined ? [cols, rows] : [cols, rows, experts];
  if (info.dims.length !== want.length || want.some((d, i) => info.dims[i] !== d)) {
    throw new Error(
      `tensor "${info.name}" has shape ${[...info.dims].reverse().join("x")}, ` +
        `the config needs ${[...want].reverse().join("x")}`,
    );
  }
  return rows * (experts ?? 1);
}

export async function loadWeights(
  file: GgufFile,
  config: ModelConfig,
  options: LoadOptions = {},
): Promise<ModelWeights> {
  const layerStart = options.layerStart ?? 0;
  const layerEnd = options.layerEnd ?? config.layers;
  const plan = planTensors(file, config, layerStart, layerEnd);
  const first = layerStart === 0;
  const last = layerEnd === config.layers;

  const loaded = new Map<string, Matrix | Float32Array>();
  let i = 0;
  for (const { name, shape, experts } of plan) {
    const info = needTensor(file, name);
    loaded.set(
      name,
      shape
        ? await loadMatrix(file, info, checkShape(info, shape, experts))
        : await loadVector(file, info),
    );
    options.onTensor?.(name, ++i, plan.length);
  }
  const mat = (name: string) => loaded.get(name) as Matrix;
  const vec = (name: string) => loaded.get(name) as Float32Array | undefined;

  const layers: LayerWeights[] = [];
  for (let l = layerStart; l < layerEnd; l++) {
    layers.push(
      config.recurrent
        ? hybridLayerWeights(config, l, mat, vec)
        : config.arch === "gpt-oss"
        ? gptOssLayerWeights(l, mat, vec)
        : layerWeights(l, mat, vec, config.moe !== undefined),
    );
  }
  const tokenEmbedding = loaded.get("token_embd.weight") as Matrix | undefined;
  return {
    layerStart,
    layerEnd,
    tokenEmbedding: first ? tokenEmbedding : undefined,
    layers,
    outputNorm: last ? vec("output_norm.weight") : undefined,
    output: last
      ? (loaded.get("output.weight") as Matrix | undefined) ?? tokenEmbedding
      : undefined,
    ropeFreqFactors: vec("rope_freqs.weight"),
    ropeFactorsLong: vec("rope_factors_long.weight"),
    ropeFactorsShort: vec("rope_factors_short.weight"),
  };
}
