/**
 * The WebGPU engine: Grove's own WGSL kernels (forward.ts) over weights
 * uploaded in their stored form, behind the same Engine interface as the CPU
 * path. Results come back from the device asynchronously, so sessions answer
 * through `evaluateAsync` / `evaluateGreedy` (generate() uses them); the
 * synchronous `evaluate` says so instead of blocking.
 */
import { type GgufFile, openGguf } from "../gguf.ts";
import { type ModelConfig, modelConfigOf } from "../model-config.ts";
import { tokenizerFromMetadata } from "../tokenizer/mod.ts";
import { gpuContextSize } from "../context-size.ts";
import type { Engine, Session } from "../engine.ts";
import { type Gpu, requestGpu } from "./device.ts";
import { type GpuModelWeights, uploadWeights } from "./load-weights.ts";
import {
  createEmbedder,
  createHead,
  createReader,
  createScratch,
  maxBatchFor,
  scratchBuffer,
  sequenceStack,
} from "./forward.ts";
import { recurrentRewind } from "./hybrid-layer.ts";
import { writeTokenIds } from "./kernels/embed.ts";
import { gpuEmbed } from "./embed.ts";

export interface WebGpuEngineInit {
  path: string;
  ctxSize?: number; // default: the model's context length, capped at 4096 (gpuContextSize)
  layerStart?: number;
  layerEnd?: number;
  onProgress?: (loaded: number, total: number) => void;
  /** A device to share (tests load many models on one); default: a new one. */
  gpu?: Gpu;
}

/** An Engine whose device memory can be released before the process ends. */
export interface WebGpuEngine extends Engine {
  gpu: Gpu;
  close(): void;
}

export interface GpuModel {
  gpu: Gpu;
  config: ModelConfig;
  weights: GpuModelWeights;
  ctxSize: number;
  maxBatch: number;
  metadata: Engine["metadata"];
  /** The GGUF it was read from (its bytesRead counts this load's reads). */
  file: GgufFile;
  loadMs: number;
}

/** Fails at load, naming the limit, when one layer's KV cache cannot be bound. */
function checkKvFits(gpu: Gpu, config: ModelConfig, ctxSize: number) {
  const width = config.kvHeads * Math.max(config.headDim, config.valueDim);
  const bytes = ctxSize * width * 4;
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new Error(
      `KV cache: one layer's ${ctxSize} positions × ${width} values (${bytes} bytes) exceed ` +
        `maxStorageBufferBindingSize ${limit} on ${gpu.adapterName}; use a smaller context`,
    );
  }
}

export async function loadGpuModel(init: WebGpuEngineInit): Promise<GpuModel> {
  const started = performance.now();
  const gpu = init.gpu ?? await requestGpu();
  const file = await openGguf(init.path);
  const config = modelConfigOf(file);
  const ctxSize = init.ctxSize ?? gpuContextSize(config).ctxSize;
  checkKvFits(gpu, config, ctxSize);
  const weights = await uploadWeights(gpu, file, config, {
    layerStart: init.layerStart,
    layerEnd: init.layerEnd,
    onTensor: (_name, loaded, total) => init.onProgress?.(loaded, total),
    ctxSize,
  });
  return {
    gpu,
    config,
    weights,
    ctxSize,
    maxBatch: maxBatchFor(gpu, config, ctxSize),
    metadata: file.metadata,
    file,
    loadMs: performance.now() - started,
  };
}

export function checkRewind(position: number, to: number) {
  if (to < 0 || to > position) {
    throw new Error(`cannot rewind to ${to}: the cache holds ${position} positions`);
  }
}

export function checkIds(tokens: readonly number[], vocabSize: number) {
  if (tokens.length === 0) throw new Error("evaluate needs at least one token");
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new Error(`token id ${t} is outside the vocabulary (0..${vocabSize - 1})`);
    }
  }
}

/** A device error (validation, OOM) makes every later result garbage: surface it. */
export function checkDevice(gpu: Gpu) {
  const err = gpu.lastError();
  if (err) throw new Error(`WebGPU error on ${gpu.adapterName}: ${err.message}`);
}

export interface WebGpuSession extends Session {
  evaluateAsync(tokens: readonly number[]): Promise<Float32Array>;
  evaluateGreedy(tokens: readonly number[]): Promise<number>;
  destroy(): void;
}

function createGpuSession(model: GpuModel): WebGpuSession {
  const { gpu, config, weights, ctxSize, maxBatch } = model;
  const { device } = gpu;
  const scratch = createScratch(device, config, maxBatch);
  const ids = scratchBuffer(device, maxBatch, "token ids");
  const stack = sequenceStack(gpu, config, weights, ctxSize, scratch);
  const embed = createEmbedder(device, weights, ids, scratch.hidden);
  const head = createHead(gpu, config, weights, scratch.hidden);
  const reader = createReader(device, config.vocabSize * 4, "logits");
  let position = 0;
  let busy = false;

  /** One encoder (and submit) per chunk of ≤ maxBatch tokens; one readback at the end. */
  async function run(tokens: readonly number[], greedy: boolean): Promise<ArrayBuffer> {
    checkIds(tokens, config.vocabSize);
    if (position + tokens.length > ctxSize) {
      throw new Error(
        `context full: ${position} + ${tokens.length} positions exceed the context size ${ctxSize}`,
      );
    }
    if (busy) throw new Error("this session is already evaluating; await the previous call");
    busy = true;
    try {
      const bytes = greedy ? 4 : config.vocabSize * 4;
      for (let start = 0; start < tokens.length; start += maxBatch) {
        const chunk = tokens.slice(start, start + maxBatch);
        const n = chunk.length;
        const last = start + n === tokens.length;
        writeTokenIds(device, ids, chunk, config.vocabSize);
        const enc = device.createCommandEncoder({ label: "forward" });
        const pass = enc.beginComputePass();
        embed.update({ n });
        embed.encode(pass);
        stack.encode(pass, n, position);
        if (last) head.encode(pass, n - 1, greedy);
        pass.end();
        if (last) reader.copy(enc, greedy ? head.pick : head.logits, bytes);
        device.queue.submit([enc.finish()]);
        position += n;
      }
      const out = await reader.read(bytes);
      checkDevice(gpu);
      return out;
    } finally {
      busy = false;
    }
  }

  return {
    get position() {
      return position;
    },
    evaluate() {
      throw new Error(
        "the WebGPU engine reads results back asynchronously: call evaluateAsync or " +
          "evaluateGreedy (generate() does)",
      );
    },
    evaluateAsync: async (tokens) => new Float32Array(await run(tokens, false)),
    evaluateGreedy: async (tokens) => new Uint32Array(await run(tokens, true))[0],
    rewind(to) {
      checkRewind(position, to);
      if (recurrentRewind(config, position, to)) stack.clearRecurrent(0);
      position = to;
    },
    destroy() {
      for (const k of [stack, embed, head, reader]) k.destroy();
      for (const b of [ids, ...Object.values(scratch).filter((b) => b instanceof GPUBuffer)]) {
        (b as GPUBuffer).destroy();
      }
    },
  };
}

export function destroyWeights(weights: GpuModelWeights) {
  for (const b of new Set(weights.memory)) b.destroy();
}

export async function createWebGpuEngine(init: WebGpuEngineInit): Promise<WebGpuEngine> {
  if (init.layerStart !== undefined || init.layerEnd !== undefined) {
    throw new Error("createWebGpuEngine runs the whole model; use createWebGpuStage for a range");
  }
  return engineFromModel(await loadGpuModel(init), init.path);
}

/** The Engine face of a loaded model (a batched engine shares the model with it). */
export function engineFromModel(model: GpuModel, path: string): WebGpuEngine {
  const sessions = new Set<WebGpuSession>();
  return {
    info: {
      backend: "webgpu",
      adapter: model.gpu.adapterName,
      path,
      weightBytes: model.weights.bytes,
      loadMs: model.loadMs,
    },
    config: model.config,
    metadata: model.metadata,
    tokenizer: tokenizerFromMetadata(model.metadata),
    ctxSize: model.ctxSize,
    gpu: model.gpu,
    createSession() {
      const s = createGpuSession(model);
      sessions.add(s);
      return s;
    },
    embed: (tokens, pooling) => gpuEmbed(model, tokens, pooling),
    close() {
      for (const s of sessions) s.destroy();
      sessions.clear();
      destroyWeights(model.weights);
    },
  };
}
