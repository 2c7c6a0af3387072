/**
 * The weights of a layer range, uploaded to the device straight from the
 * GGUF file: each tensor is read, uploaded in its stored (quantized) form and
 * its host copy dropped, so the whole model never sits in host memory. The
 * device's staging copies are let go every STAGING_FLUSH_BYTES (flushStaging).
 * The tensors are those of inference/weights.ts `planTensors`, as for the CPU.
 */
import { ggmlTypeName, isSupportedWeightType } from "../ggml-type.ts";
import { type GgufFile, type GgufTensorInfo, readTensorData } from "../gguf.ts";
import { dequantize } from "../quant/mod.ts";
import type { ModelConfig } from "../model-config.ts";
import {
  checkShape,
  layerWeights,
  type LayerWeightsOf,
  needTensor,
  planTensors,
  type TensorUse,
} from "../weights.ts";
import { gptOssLayerWeights } from "../gpt-oss.ts";
import { hybridLayerWeights } from "../hybrid-weights.ts";
import { longRopeFactors } from "../long-rope.ts";
import type { Gpu } from "./device.ts";
import { type GpuMatrix, type GpuMatrixLayout, uploadMatrix, uploadVector } from "./weights.ts";
import { releaseFreedHeap } from "./release-heap.ts";
import { matVecRows4Supports, matVecSupports } from "./kernels/matvec.ts";
import { matMulSupports } from "./kernels/matmul.ts";
import { supportsEmbed } from "./kernels/embed.ts";
import { createRopeTable } from "./kernels/rope.ts";

export type GpuLayerWeights = LayerWeightsOf<GpuMatrix, GPUBuffer>;

export interface GpuModelWeights {
  layerStart: number;
  layerEnd: number;
  tokenEmbedding?: GpuMatrix; // (vocab, dim), first stage only
  layers: GpuLayerWeights[]; // layers[i] is layer layerStart + i
  outputNorm?: GPUBuffer; // (dim), last stage only
  output?: GpuMatrix; // (vocab, dim); the token embedding's buffers when tied
  ropeTable: GPUBuffer; // (ropeDim/2) inverse frequencies, freq factors folded in
  ropeTableLocal?: GPUBuffer; // gemma3's local layers: (ropeDim/2) at rope.freq_base_swa
  embedScale?: number; // gemma3: the token embedding's rows are multiplied by it (createEmbedder)
  bytes: number; // weight bytes on the device
  memory: (GPUBuffer | GPUTexture)[]; // everything above, for destroy
}

export interface UploadWeightsOptions {
  layerStart?: number;
  layerEnd?: number;
  onTensor?: (name: string, loaded: number, total: number) => void;
  /** Each sequence's context: picks phi3's LongRoPE factors (required when the file has them). */
  ctxSize?: number;
}

function checkKernels(file: GgufFile, info: GgufTensorInfo, use: TensorUse) {
  const type = ggmlTypeName(info.type);
  const cols = info.dims[0];
  const fail = (kernel: string) => {
    throw new Error(
      `${file.path}: tensor "${info.name}" (${type}, rows of ${cols}) is not supported by the ` +
        `WebGPU ${kernel} kernel`,
    );
  };
  if (!isSupportedWeightType(info.type)) fail("matvec");
  if (use !== "embed" && !matVecSupports(info.type, cols)) fail("matvec");
  if (use === "layer" && !matMulSupports(info.type, cols)) fail("matmul");
  if (use.startsWith("embed") && !supportsEmbed(info.type, cols)) fail("embed");
}

/**
 * Where a matrix lives: on software adapters the layers' and head's Q4_0 /
 * Q4_K matrices go to rows4 textures, which only the rows4 matvec and matmul
 * read (faster there, see rows4-layout.ts); the token embedding stays in
 * buffers for the embed kernel, tied or not.
 */
function layoutFor(gpu: Gpu, info: GgufTensorInfo, use: TensorUse): GpuMatrixLayout {
  const rows4 = gpu.isFallback && (use === "layer" || use === "head") &&
    matVecRows4Supports(gpu, info.type, info.dims[0]);
  return rows4 ? "rows4" : "rows";
}

/**
 * Uploaded bytes after which the queue is flushed: wgpu stages each upload (a mapped-at-creation
 * buffer, writeTexture) in host-visible memory that it lets go only once a submission that
 * carries the copy completes, and its allocator keeps that memory for reuse. Without a flush
 * every staging copy waits for the first submit and then stays pooled: the 1.1 B Q4_0 bench
 * model (458 MiB of weights): the process held 1141 MiB after upload on llvmpipe, 693 with this.
 */
export const STAGING_FLUSH_BYTES = 16 * 1024 * 1024;

/** Submits nothing and waits for the queue: the uploads staged so far are copied and let go. */
async function flushStaging(gpu: Gpu): Promise<void> {
  gpu.device.queue.submit([]);
  await gpu.device.queue.onSubmittedWorkDone();
}

/** Runs `upload` inside error scopes so an allocation the device refuses names the tensor. */
async function guarded<T>(gpu: Gpu, what: string, bytes: number, upload: () => T): Promise<T> {
  const { device } = gpu;
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let result: T;
  try {
    result = upload();
  } catch (e) {
    await device.popErrorScope();
    await device.popErrorScope();
    throw new Error(`${what} does not fit on ${gpu.adapterName}: ${(e as Error).message}`);
  }
  const invalid = await device.popErrorScope();
  const oom = await device.popErrorScope();
  const err = oom ?? invalid;
  if (err) {
    throw new Error(
      `${what} (${bytes} bytes) does not fit on ${gpu.adapterName} ` +
        `(maxBufferSize ${device.limits.maxBufferSize}, maxStorageBufferBindingSize ` +
        `${device.limits.maxStorageBufferBindingSize}): ${err.message}`,
    );
  }
  return result;
}

export async function uploadWeights(
  gpu: Gpu,
  file: GgufFile,
  config: ModelConfig,
  options: UploadWeightsOptions = {},
): Promise<GpuModelWeights> {
  const longRope = ["rope_factors_long.weight", "rope_factors_short.weight"];
  if (options.ctxSize === undefined && longRope.some((t) => file.tensor(t))) {
    throw new Error(
      `${file.path}: LongRoPE factors are chosen by the context: upload needs ctxSize`,
    );
  }
  const layerStart = options.layerStart ?? 0;
  const layerEnd = options.layerEnd ?? config.layers;
  const plan = planTensors(file, config, layerStart, layerEnd);
  const first = layerStart === 0;
  const last = layerEnd === config.layers;

  const mats = new Map<string, GpuMatrix>();
  const vecs = new Map<string, GPUBuffer>();
  let ropeFactors: Float32Array | undefined;
  const longRopeSets = new Map<string, Float32Array>();
  const memory: (GPUBuffer | GPUTexture)[] = [];
  let bytes = 0;
  let done = 0;
  let staged = 0; // bytes uploaded since the last flushStaging
  const uploaded = async (n: number) => {
    staged += n;
    if (staged < STAGING_FLUSH_BYTES) return;
    staged = 0;
    await flushStaging(gpu);
  };
  for (const { name, shape, use, experts } of plan) {
    const info = needTensor(file, name);
    if (shape) {
      const cols = shape[1];
      const rows = checkShape(info, shape, experts);
      checkKernels(file, info, use!);
      const data = await readTensorData(file, info);
      const m = await guarded(
        gpu,
        `tensor "${name}"`,
        data.byteLength,
        () =>
          uploadMatrix(gpu.device, { name, type: info.type, rows, cols, data }, {
            // An expert stack: rows buffers (moe-matvec.ts reads them) holding whole experts.
            layout: experts ? "rows" : layoutFor(gpu, info, use!),
            rowsMultiple: experts ? shape[0] : undefined,
          }),
      );
      mats.set(name, m);
      memory.push(...m.memory);
      bytes += info.byteLength;
      await uploaded(info.byteLength);
    } else {
      const n = info.dims.reduce((a, b) => a * b, 1);
      const values = dequantize(info.type, await readTensorData(file, info), n);
      if (name === "rope_freqs.weight") ropeFactors = values;
      else if (longRope.includes(name)) longRopeSets.set(name, values);
      else {
        const b = await guarded(
          gpu,
          `tensor "${name}"`,
          n * 4,
          () => uploadVector(gpu.device, values, name),
        );
        vecs.set(name, b);
        memory.push(b);
        bytes += values.byteLength;
        await uploaded(values.byteLength);
      }
    }
    options.onTensor?.(name, ++done, plan.length);
  }

  const layers: GpuLayerWeights[] = [];
  for (let l = layerStart; l < layerEnd; l++) {
    const mat = (name: string) => mats.get(name)!, vec = (name: string) => vecs.get(name);
    layers.push(
      config.arch === "gpt-oss"
        ? gptOssLayerWeights(l, mat, vec)
        : config.recurrent
        ? hybridLayerWeights(config, l, mat, vec)
        : layerWeights(l, mat, vec, config.moe !== undefined),
    );
  }
  // phi3's LongRoPE: the set this engine's context takes (every sequence has that context).
  ropeFactors ??= longRopeSets.size === 0 ? undefined : longRopeFactors(
    config,
    options.ctxSize!,
    longRopeSets.get(longRope[0]),
    longRopeSets.get(longRope[1]),
  );
  const ropeTable = createRopeTable(
    gpu.device,
    config.ropeDim,
    config.ropeBase,
    ropeFactors,
    config.ropeScaling,
  );
  memory.push(ropeTable);
  const ropeTableLocal = config.ropeBaseLocal === undefined
    ? undefined
    : createRopeTable(gpu.device, config.ropeDim, config.ropeBaseLocal);
  if (ropeTableLocal) memory.push(ropeTableLocal);
  await flushStaging(gpu);
  // Each tensor was read into a host buffer and dropped: give that heap back here, where it was
  // taken, rather than leave it to the caller (glibc keeps freed chunks below live ones).
  releaseFreedHeap();
  const embedding = mats.get("token_embd.weight");
  return {
    layerStart,
    layerEnd,
    tokenEmbedding: first ? embedding : undefined,
    layers,
    outputNorm: last ? vecs.get("output_norm.weight") : undefined,
    output: last ? mats.get("output.weight") ?? embedding : undefined,
    ropeTable,
    ropeTableLocal,
    embedScale: config.embedScale,
    bytes,
    memory,
  };
}
