/**
 * The hyper-parameters of a decoder-only transformer, read from GGUF
 * metadata with llama.cpp's key names (`{arch}.embedding_length`, ...).
 */
import type { GgufValue } from "./gguf.ts";

export type Architecture = "llama" | "qwen2" | "qwen3";
export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = ["llama", "qwen2", "qwen3"];

export interface ModelConfig {
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
  qkvBias: boolean; // qwen2
  qkNorm: boolean; // qwen3
}

function num(meta: Record<string, GgufValue>, key: string, fallback?: number): number {
  const v = meta[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new Error(`model metadata lacks "${key}"`);
  }
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "number") throw new Error(`model metadata "${key}" is not a number`);
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
  const dim = num(meta, k("embedding_length"));
  const heads = num(meta, k("attention.head_count"));
  const kvHeads = num(meta, k("attention.head_count_kv"), heads);
  const headDim = num(meta, k("attention.key_length"), dim / heads);
  if (!Number.isInteger(headDim) || heads % kvHeads !== 0) {
    throw new Error(
      `inconsistent attention shape: dim ${dim}, heads ${heads}, kv heads ${kvHeads}`,
    );
  }
  const scalingType = meta[k("rope.scaling.type")];
  const ropeScale = scalingType === "linear" ? num(meta, k("rope.scaling.factor"), 1) : 1;
  return {
    arch: a,
    name: typeof meta["general.name"] === "string" ? meta["general.name"] as string : a,
    dim,
    layers: num(meta, k("block_count")),
    heads,
    kvHeads,
    headDim,
    valueDim: num(meta, k("attention.value_length"), headDim),
    ffn: num(meta, k("feed_forward_length")),
    vocabSize,
    contextLength: num(meta, k("context_length"), 2048),
    normEps: num(meta, k("attention.layer_norm_rms_epsilon"), 1e-5),
    ropeBase: num(meta, k("rope.freq_base"), 10000),
    ropeDim: num(meta, k("rope.dimension_count"), headDim),
    ropeStyle: a === "llama" ? "normal" : "neox",
    ropeScale: ropeScale > 0 ? ropeScale : 1,
    qkvBias: a === "qwen2",
    qkNorm: a === "qwen3",
  };
}
