/**
 * What a model needs in memory, by part, from the GGUF header alone (no tensor data): the split
 * planner (mesh/stage-plan.ts) cuts layer ranges from it and `serve --max-memory` compares a
 * node's budget with it. The weights are counted as the engines hold them: matrices in their
 * stored (quantized) form, vectors (norms, biases) as f32; the tensors of a range are exactly
 * those its stage loads (weights.ts planTensors).
 */
import { byteLengthOf } from "./ggml-type.ts";
import type { GgufFile, GgufTensorInfo } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import { needTensor, planTensors } from "./weights.ts";
import { moeRowFloats } from "./moe.ts";
import { recurrentStateBytes } from "./recurrent-state.ts";
import { isLocalLayer } from "./gemma3.ts";
import { slidingCacheSize } from "./swa-cache.ts";

/** What a model needs in memory, per part (bytes). */
export interface ModelShape {
  /** Weights of each layer, in order. */
  layerBytes: readonly number[];
  /** The KV cache of one layer at the planned context size, full (one sequence). */
  kvBytesPerLayer: number;
  /** How the engine stores keys and values (attention.ts KvType). */
  kvType?: "f16" | "f32";
  /**
   * Per layer, one sequence's state in it where layers differ: a full-attention layer's KV cache
   * (kvBytesPerLayer), a linear-attention layer's fixed recurrent state (qwen35moe), or a
   * sliding-window layer's ring of window + SCRATCH_ROWS positions (gemma3, gpt-oss;
   * swa-cache.ts). Absent: every layer keeps kvBytesPerLayer.
   */
  layerStateBytes?: readonly number[];
  /** The token embeddings (stage 0). */
  firstBytes: number;
  /**
   * The output norm and the head (last stage); when the head is tied to the embeddings the last
   * stage loads them too, so they count here as well (and once on a stage holding both ends).
   */
  lastBytes: number;
  /** The head is the token embedding (no output.weight). */
  tiedHead?: boolean;
  /** Activations and buffers every stage needs whatever its layers. */
  scratchBytes: number;
}

/** Rows (all slots together) one step takes, and slots, that the scratch estimate assumes. */
export const SCRATCH_ROWS = 512;
export const SCRATCH_SLOTS = 8;

/** Bytes an engine holds for the tensor: a matrix as stored, a vector as f32. */
function heldBytes(info: GgufTensorInfo, matrix: boolean): number {
  const elements = info.dims.reduce((a, b) => a * b, 1);
  return matrix ? byteLengthOf(info.type, elements) : elements * 4;
}

/** Bytes one position of one layer's cache takes: keys and values, at their wider width. */
export function kvBytesPerPosition(
  config: Pick<ModelConfig, "kvHeads" | "headDim" | "valueDim">,
  kvType: "f16" | "f32" = "f16",
): number {
  const { kvHeads, headDim, valueDim } = config;
  // The GPU's cache layout holds both at the wider width (the CPU's is ≤ it).
  return 2 * kvHeads * Math.max(headDim, valueDim) * (kvType === "f16" ? 2 : 4);
}

/**
 * The memory `file`'s model needs at `ctxSize`, by part; the KV cache as `kvType` (the engines'
 * default, f16, unless told).
 */
export function modelShapeOf(
  file: GgufFile,
  config: ModelConfig,
  ctxSize: number,
  kvType: "f16" | "f32" = "f16",
): ModelShape {
  const L = config.layers;
  const bytesOf = (name: string, matrix: boolean) => heldBytes(needTensor(file, name), matrix);
  const layerBytes: number[] = [];
  for (let l = 0; l < L; l++) {
    // The one-layer plan also names the ends (embedding, head, RoPE factors): only blk.l here.
    const own = planTensors(file, config, l, l + 1).filter((t) => t.name.startsWith(`blk.${l}.`));
    layerBytes.push(own.reduce((sum, t) => sum + bytesOf(t.name, t.shape !== undefined), 0));
  }
  const tiedHead = !file.tensor("output.weight");
  const firstBytes = bytesOf("token_embd.weight", true);
  const lastBytes = bytesOf("output_norm.weight", false) +
    (tiedHead ? firstBytes : bytesOf("output.weight", true));
  const kvBytesPerLayer = ctxSize * kvBytesPerPosition(config, kvType);
  const rope = file.tensor("rope_freqs.weight");
  const scratchBytes = activationBytes(config, ctxSize, SCRATCH_ROWS, SCRATCH_SLOTS) +
    (rope ? heldBytes(rope, false) : 0);
  const shape: ModelShape = {
    layerBytes,
    kvBytesPerLayer,
    kvType,
    firstBytes,
    lastBytes,
    tiedHead,
    scratchBytes,
  };
  const ringBytes = slidingCacheSize(config, ctxSize, SCRATCH_ROWS) *
    kvBytesPerPosition(config, kvType);
  const local = (l: number) => isLocalLayer(config, l);
  if (config.recurrent || Array.from({ length: L }, (_, l) => l).some(local)) {
    shape.layerStateBytes = Array.from(
      { length: L },
      (_, l) =>
        config.recurrent?.recurrentLayers[l]
          ? recurrentStateBytes(config, l, l + 1)
          : local(l)
          ? ringBytes
          : kvBytesPerLayer,
    );
  }
  return shape;
}

/**
 * The f32 buffers one CPU step over `rows` stacked rows of up to `slots` sequences allocates
 * (reference.ts forwardRows, batch.ts, stage-batch.ts), counted in floats:
 * - the stacked hidden states, twice (the step's input and the embedded or received copy):
 *   2 · rows · dim;
 * - forwardRows' per-step buffers xb, proj (dim each), q, k, v, att and gate, up (ffn each):
 *   rows · (2·dim + heads·headDim + kvHeads·(headDim + valueDim) + heads·valueDim + 2·ffn);
 * - the matrix kernels' staging of activations and results for the widest product:
 *   rows · 2 · max(dim, ffn, heads·headDim);
 * - a mixture of experts' routing and per-choice outputs (moe.ts moeScratch);
 * - per slot its attention scores (ctx) and, on the last stage, one row's final norm and
 *   logits: slots · (ctx + dim + vocab).
 */
export function activationBytes(
  config: ModelConfig,
  ctxSize: number,
  rows: number,
  slots: number,
): number {
  const { dim, heads, kvHeads, headDim, valueDim, ffn, vocabSize } = config;
  const qDim = heads * headDim;
  const perRow = 2 * dim +
    2 * dim + qDim + kvHeads * (headDim + valueDim) + heads * valueDim + 2 * ffn +
    2 * Math.max(dim, ffn, qDim) + (config.moe ? moeRowFloats(config) : 0);
  return 4 * (rows * perRow + slots * (ctxSize + dim + vocabSize));
}

/** The weights the layers [start, end) of `shape` hold, with the embedding and head at the ends. */
export function stageWeightBytes(shape: ModelShape, start: number, end: number): number {
  const layers = shape.layerBytes.length;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end)) {
    throw new Error(`layer range [${start}, ${end}) is empty or not whole numbers`);
  }
  if (end > layers) throw new Error(`layer range [${start}, ${end}) is outside 0..${layers}`);
  let bytes = 0;
  for (let l = start; l < end; l++) bytes += shape.layerBytes[l];
  if (start === 0) bytes += shape.firstBytes;
  if (end === layers) {
    // A stage holding both ends holds a tied embedding once.
    bytes += start === 0 && shape.tiedHead ? shape.lastBytes - shape.firstBytes : shape.lastBytes;
  }
  return bytes;
}

/** One sequence's state in the layers [start, end): KV caches (and recurrent states). */
export function stageStateBytes(shape: ModelShape, start: number, end: number): number {
  const per = shape.layerStateBytes;
  if (!per) return (end - start) * shape.kvBytesPerLayer;
  let bytes = 0;
  for (let l = start; l < end; l++) bytes += per[l];
  return bytes;
}

/** What the layers [start, end) of `shape` need on one node: weights, KV cache and scratch. */
export function stageBytes(shape: ModelShape, start: number, end: number): number {
  return stageWeightBytes(shape, start, end) + stageStateBytes(shape, start, end) +
    shape.scratchBytes;
}

/** What one node needs to serve the whole model. */
export function wholeModelBytes(shape: ModelShape): number {
  return stageBytes(shape, 0, shape.layerBytes.length);
}
