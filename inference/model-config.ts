/**
 * The hyper-parameters of a decoder-only transformer, read from GGUF
 * metadata with llama.cpp's key names (`{arch}.embedding_length`, ...).
 */
import type { GgufFile, GgufValue } from "./gguf.ts";
import { type RopeScaling, ropeScalingFromMetadata } from "./rope-scaling.ts";
import { type MoeConfig, moeConfigOf } from "./moe-config.ts";
import { type DenseArchConfig, denseArchConfigOf } from "./dense-config.ts";
import { type RecurrentConfig, recurrentConfigOf } from "./recurrent-config.ts";
import { gptOssConfigOf } from "./gpt-oss.ts";
import { metaCount, metaNumber } from "./metadata-numbers.ts";

export type { MoeConfig } from "./moe-config.ts";
export type Architecture =
  | "llama"
  | "qwen2"
  | "qwen3"
  | "qwen2moe"
  | "qwen3moe"
  | "gemma3"
  | "phi3"
  | "qwen35moe"
  | "gpt-oss";
export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  "llama",
  "qwen2",
  "qwen3",
  "qwen2moe",
  "qwen3moe",
  "gemma3",
  "phi3",
  "qwen35moe",
  "gpt-oss",
];

/** DenseArchConfig: gemma3's sliding window, scales, GELU and soft-capping (dense-config.ts). */
export interface ModelConfig extends DenseArchConfig {
  arch: Architecture;
  name: string;
  dim: number; // width of the residual stream
  layers: number;
  heads: number; // query heads
  kvHeads: number; // key/value heads (GQA when < heads)
  headDim: number; // width of one query/key head
  valueDim: number; // width of one value head
  ffn: number; // hidden width of the SwiGLU feed-forward
  vocabSize: number;
  contextLength: number; // what the model was trained for
  normEps: number;
  ropeBase: number;
  ropeDim: number; // leading dims of each head that RoPE rotates
  ropeStyle: "normal" | "neox"; // pairs (2i, 2i+1) or (i, i + ropeDim/2)
  ropeScale: number; // linear position scaling: positions are divided by it
  ropeScaling: RopeScaling; // none, linear, yarn, llama3 (rope-scaling.ts); ropeScale is its factor
  qkvBias: boolean; // qwen2
  qkNorm: boolean; // qwen3
  moe?: MoeConfig; // mixture-of-experts feed-forward (qwen2moe, qwen3moe); dense when absent
  recurrent?: RecurrentConfig; // qwen35moe: which layers are gated delta nets, and their shape
  attnOutputGate?: boolean; // qwen35moe: W_q also gives a per-head gate of the attention output
  /** Blocks after the `layers` run, holding a multi-token-prediction head (never run). */
  nextnLayers?: number;
}

/**
 * Upper bounds no real model comes near (the largest open models have ~130 layers, 16k wide
 * residuals, 128 heads and contexts of 1M tokens). Every size below is also checked against the
 * tensor directory before anything is allocated; these bounds only keep the arithmetic exact.
 */
export const CONFIG_BOUNDS = {
  layers: 4096,
  width: 1 << 20, // dim, ffn, head widths
  heads: 4096,
  contextLength: 1 << 26,
} as const;

/** A real-valued parameter: finite and positive. */
function positive(meta: Record<string, GgufValue>, key: string, fallback: number) {
  const v = metaNumber(meta, key, fallback);
  if (!Number.isFinite(v) || v <= 0) {
    throw new Error(`model metadata "${key}" is ${v}; expected a positive number`);
  }
  return v;
}

/** Reads the config; `vocabSize` comes from the token embedding, which is authoritative. */
export function configFromMetadata(
  meta: Record<string, GgufValue>,
  vocabSize: number,
): ModelConfig {
  const arch = meta["general.architecture"];
  if (typeof arch !== "string") throw new Error(`model metadata lacks "general.architecture"`);
  if (!SUPPORTED_ARCHITECTURES.includes(arch as Architecture)) {
    throw new Error(
      `unsupported model architecture "${arch}"; Grove runs ${SUPPORTED_ARCHITECTURES.join(", ")}`,
    );
  }
  const a = arch as Architecture;
  const k = (key: string) => `${a}.${key}`;
  const { layers: maxLayers, width, heads: maxHeads } = CONFIG_BOUNDS;
  const dim = metaCount(meta, k("embedding_length"), width);
  const heads = metaCount(meta, k("attention.head_count"), maxHeads);
  const kvHeads = metaCount(meta, k("attention.head_count_kv"), maxHeads, heads);
  const headDim = metaNumber(meta, k("attention.key_length"), dim / heads);
  if (!Number.isInteger(headDim) || headDim < 1 || headDim > width || heads % kvHeads !== 0) {
    throw new Error(
      `inconsistent attention shape: dim ${dim}, heads ${heads}, kv heads ${kvHeads}`,
    );
  }
  const contextLength = metaCount(meta, k("context_length"), CONFIG_BOUNDS.contextLength, 2048);
  const ropeScaling = ropeScalingFromMetadata(meta, a, contextLength);
  const ropeScale = ropeScaling.factor;
  const ropeDim = metaCount(meta, k("rope.dimension_count"), headDim, headDim);
  if (ropeDim % 2 !== 0) {
    throw new Error(`model metadata "${k("rope.dimension_count")}" is ${ropeDim}; must be even`);
  }
  return {
    arch: a,
    name: typeof meta["general.name"] === "string" ? meta["general.name"] as string : a,
    dim,
    layers: metaCount(meta, k("block_count"), maxLayers) - nextnOf(meta, a),
    heads,
    kvHeads,
    headDim,
    valueDim: metaCount(meta, k("attention.value_length"), width, headDim),
    ffn: ffnOf(meta, a, width),
    vocabSize,
    contextLength,
    normEps: positive(meta, k("attention.layer_norm_rms_epsilon"), 1e-5),
    ropeBase: positive(meta, k("rope.freq_base"), 10000),
    ropeDim,
    ropeStyle: a === "llama" ? "normal" : "neox",
    ropeScale: ropeScale > 0 ? ropeScale : 1,
    ropeScaling,
    qkvBias: a === "qwen2" || a === "qwen2moe",
    qkNorm: a === "qwen3" || a === "qwen3moe" || a === "gemma3",
    ...moeOf(meta, a, width),
    ...recurrentOf(
      meta,
      a,
      metaCount(meta, k("block_count"), maxLayers) - nextnOf(meta, a),
      ropeDim,
      width,
    ),
    ...(nextnOf(meta, a) ? { nextnLayers: nextnOf(meta, a) } : {}),
    ...denseArchConfigOf(meta, a, {
      dim,
      heads,
      headDim,
      layers: metaCount(meta, k("block_count"), maxLayers),
    }),
    ...gptOssConfigOf(meta, a, metaCount(meta, k("block_count"), maxLayers)),
  };
}

/**
 * `{arch}.feed_forward_length`. llama.cpp reads it as optional; Qwen3.5 MoE configs may not
 * carry the dense width it comes from, so there its experts' width stands in.
 */
function ffnOf(meta: Record<string, GgufValue>, a: Architecture, width: number): number {
  const fallback = a === "qwen35moe"
    ? metaNumber(meta, `${a}.expert_feed_forward_length`)
    : undefined;
  return metaCount(meta, `${a}.feed_forward_length`, width, fallback);
}

/**
 * `{arch}.nextn_predict_layers`: the trailing blocks of block_count that hold a
 * multi-token-prediction head (llama.cpp's n_layer() leaves them out of the main pass, as
 * Grove does), 0 when absent.
 */
function nextnOf(meta: Record<string, GgufValue>, a: Architecture): number {
  const key = `${a}.nextn_predict_layers`;
  const raw = meta[key];
  if (raw === undefined) return 0;
  const v = typeof raw === "bigint" ? Number(raw) : raw;
  const blocks = metaNumber(meta, `${a}.block_count`);
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= blocks) {
    throw new Error(`model metadata "${key}" is ${v}; expected a whole number below block_count`);
  }
  return v;
}

/** `{ recurrent, attnOutputGate }` for a hybrid (linear + full attention) architecture. */
function recurrentOf(
  meta: Record<string, GgufValue>,
  a: Architecture,
  layers: number,
  ropeDim: number,
  width: number,
) {
  const recurrent = recurrentConfigOf(meta, a, layers, ropeDim, width);
  return recurrent ? { recurrent, attnOutputGate: true } : {};
}

/** `{ moe }` for a mixture-of-experts architecture, nothing for a dense one. */
function moeOf(meta: Record<string, GgufValue>, a: Architecture, width: number) {
  const moe = moeConfigOf(meta, a, ffnOf(meta, a, width), width);
  return moe ? { moe } : {};
}

/**
 * The config of a GGUF file, its metadata checked against its tensor directory before anything
 * is planned or allocated: a file that claims a million layers but holds tensors for five is
 * refused here, in microseconds, instead of after building a plan for a million layers.
 */
export function modelConfigOf(file: GgufFile): ModelConfig {
  const embed = file.tensor("token_embd.weight");
  if (!embed) throw new Error(`${file.path}: tensor "token_embd.weight" is missing`);
  if (embed.dims.length !== 2) {
    throw new Error(
      `${file.path}: tensor "token_embd.weight" should be 2-D, has dims ${embed.dims}`,
    );
  }
  let config: ModelConfig;
  try {
    config = configFromMetadata(file.metadata, embed.dims[1]);
  } catch (err) {
    throw new Error(`${file.path}: ${(err as Error).message}`);
  }
  if (embed.dims[0] !== config.dim) {
    throw new Error(
      `${file.path}: metadata says the embedding width is ${config.dim}, ` +
        `but tensor "token_embd.weight" rows are ${embed.dims[0]} wide`,
    );
  }
  if (file.tensor("rope_freqs.weight") && config.ropeScaling.type === "none") {
    // Llama 3.1's scaling lives in per-pair factors (weights.ts ropeFreqFactors), not metadata.
    config.ropeScaling = { ...config.ropeScaling, type: "llama3" };
  }
  const blocks = blockIndices(file);
  const held = config.layers + (config.nextnLayers ?? 0);
  const missing = held - blocks.size;
  const beyond = [...blocks].find((b) => b >= held);
  if (missing > 0 || beyond !== undefined) {
    throw new Error(
      `${file.path}: metadata says ${config.arch}.block_count is ${held}, ` +
        `but the file holds tensors for ${blocks.size} layers` +
        (beyond !== undefined ? ` (including blk.${beyond})` : ""),
    );
  }
  return config;
}

/** The distinct N of the file's `blk.N.*` tensors. */
function blockIndices(file: GgufFile): Set<number> {
  const out = new Set<number>();
  for (const t of file.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) out.add(Number(m[1]));
  }
  return out;
}
