/**
 * Loads the weights of a layer range from a GGUF file, tensor by tensor,
 * keeping matrices in their stored (possibly quantized) form.
 */
import { GgmlType, ggmlTypeName, isSupportedWeightType } from "./ggml-type.ts";
import { type GgufFile, type GgufTensorInfo, readTensorData } from "./gguf.ts";
import { dequantize } from "./quant/mod.ts";
import type { ModelConfig } from "./model-config.ts";

/** A 2-D weight: `rows` rows of `cols` values each, in ggml's row-major block layout. */
export interface Matrix {
  name: string;
  type: GgmlType;
  rows: number;
  cols: number;
  data: Uint8Array;
}

export interface LayerWeights {
  attnNorm: Float32Array; // (dim)
  wq: Matrix; // (heads*headDim, dim)
  wk: Matrix; // (kvHeads*headDim, dim)
  wv: Matrix; // (kvHeads*valueDim, dim)
  wo: Matrix; // (dim, heads*valueDim)
  bq?: Float32Array; // (heads*headDim) qwen2
  bk?: Float32Array; // (kvHeads*headDim)
  bv?: Float32Array; // (kvHeads*valueDim)
  qNorm?: Float32Array; // (headDim) qwen3, per-head RMSNorm of queries
  kNorm?: Float32Array; // (headDim)
  ffnNorm: Float32Array; // (dim)
  wGate: Matrix; // (ffn, dim)
  wUp: Matrix; // (ffn, dim)
  wDown: Matrix; // (dim, ffn)
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
}

export interface LoadOptions {
  layerStart?: number;
  layerEnd?: number;
  onTensor?: (name: string, loaded: number, total: number) => void;
}

function need(file: GgufFile, name: string): GgufTensorInfo {
  const info = file.tensor(name);
  if (!info) throw new Error(`${file.path}: tensor "${name}" is missing`);
  return info;
}

async function loadMatrix(file: GgufFile, info: GgufTensorInfo): Promise<Matrix> {
  if (info.dims.length !== 2) {
    throw new Error(`${file.path}: tensor "${info.name}" should be 2-D, has dims ${info.dims}`);
  }
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
    rows: info.dims[1],
    data: await readTensorData(file, info),
  };
}

async function loadVector(file: GgufFile, info: GgufTensorInfo): Promise<Float32Array> {
  const n = info.dims.reduce((a, b) => a * b, 1);
  return dequantize(info.type, await readTensorData(file, info), n);
}

function expectShape(m: Matrix, rows: number, cols: number) {
  if (m.rows !== rows || m.cols !== cols) {
    throw new Error(
      `tensor "${m.name}" has shape ${m.rows}x${m.cols}, the config needs ${rows}x${cols}`,
    );
  }
}

export async function loadWeights(
  file: GgufFile,
  config: ModelConfig,
  options: LoadOptions = {},
): Promise<ModelWeights> {
  const layerStart = options.layerStart ?? 0;
  const layerEnd = options.layerEnd ?? config.layers;
  if (layerStart < 0 || layerEnd > config.layers || layerStart >= layerEnd) {
    throw new Error(`layer range [${layerStart}, ${layerEnd}) is outside 0..${config.layers}`);
  }
  const first = layerStart === 0;
  const last = layerEnd === config.layers;
  const names: string[] = [];
  const optional = (name: string) => file.tensor(name) ? names.push(name) : undefined;
  if (first || (last && !file.tensor("output.weight"))) names.push("token_embd.weight");
  if (last) names.push("output_norm.weight"), optional("output.weight");
  optional("rope_freqs.weight"); // every layer's RoPE needs the factors
  for (let l = layerStart; l < layerEnd; l++) {
    for (const t of ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm"]) {
      names.push(`blk.${l}.${t}.weight`);
    }
    for (const t of ["ffn_gate", "ffn_up", "ffn_down"]) names.push(`blk.${l}.${t}.weight`);
    for (
      const t of [
        "attn_q.bias",
        "attn_k.bias",
        "attn_v.bias",
        "attn_q_norm.weight",
        "attn_k_norm.weight",
      ]
    ) {
      optional(`blk.${l}.${t}`);
    }
  }

  const loaded = new Map<string, Matrix | Float32Array>();
  let i = 0;
  for (const name of names) {
    const info = need(file, name);
    const value = info.dims.length === 2 && !name.endsWith("norm.weight")
      ? await loadMatrix(file, info)
      : await loadVector(file, info);
    loaded.set(name, value);
    options.onTensor?.(name, ++i, names.length);
  }
  const mat = (name: string) => loaded.get(name) as Matrix;
  const vec = (name: string) => loaded.get(name) as Float32Array | undefined;

  const { dim, heads, kvHeads, headDim, valueDim, ffn, vocabSize } = config;
  const layers: LayerWeights[] = [];
  for (let l = layerStart; l < layerEnd; l++) {
    const p = `blk.${l}.`;
    const layer: LayerWeights = {
      attnNorm: vec(p + "attn_norm.weight")!,
      wq: mat(p + "attn_q.weight"),
      wk: mat(p + "attn_k.weight"),
      wv: mat(p + "attn_v.weight"),
      wo: mat(p + "attn_output.weight"),
      bq: vec(p + "attn_q.bias"),
      bk: vec(p + "attn_k.bias"),
      bv: vec(p + "attn_v.bias"),
      qNorm: vec(p + "attn_q_norm.weight"),
      kNorm: vec(p + "attn_k_norm.weight"),
      ffnNorm: vec(p + "ffn_norm.weight")!,
      wGate: mat(p + "ffn_gate.weight"),
      wUp: mat(p + "ffn_up.weight"),
      wDown: mat(p + "ffn_down.weight"),
    };
    expectShape(layer.wq, heads * headDim, dim);
    expectShape(layer.wk, kvHeads * headDim, dim);
    expectShape(layer.wv, kvHeads * valueDim, dim);
    expectShape(layer.wo, dim, heads * valueDim);
    expectShape(layer.wGate, ffn, dim);
    expectShape(layer.wUp, ffn, dim);
    expectShape(layer.wDown, dim, ffn);
    if (config.qkNorm && (!layer.qNorm || !layer.kNorm)) {
      throw new Error(`${file.path}: ${config.arch} layer ${l} lacks attn_q_norm/attn_k_norm`);
    }
    layers.push(layer);
  }
  const tokenEmbedding = loaded.get("token_embd.weight") as Matrix | undefined;
  if (tokenEmbedding) expectShape(tokenEmbedding, vocabSize, dim);
  const output = last
    ? (loaded.get("output.weight") as Matrix | undefined) ?? tokenEmbedding
    : undefined;
  if (output) expectShape(output, vocabSize, dim);
  return {
    layerStart,
    layerEnd,
    tokenEmbedding: first ? tokenEmbedding : undefined,
    layers,
    outputNorm: last ? vec("output_norm.weight") : undefined,
    output,
    ropeFreqFactors: vec("rope_freqs.weight"),
  };
}
