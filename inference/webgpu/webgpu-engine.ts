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
import { ringRewind, type RingTrack } from "../swa-cache.ts";

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

/** Throws when a rewind to `to` cannot be made (RewindRefusedError where `ring` lost its window). */
export function checkRewind(position: number, to: number, ring?: RingTrack) {
  if (ring) return ringRewind(ring, position, to);
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
  evaluateGreedyStream(tokens: readonly number[], max: number): AsyncGenerator<number, void>;
  destroy(): void;
}

/**
 * Greedy steps a stream keeps queued on the device ahead of the picks read so far. A readback in
 * Deno waits until the device has run everything queued, then 10 ms more, whatever the work took
 * (ext/webgpu/buffer.rs: the ~11 ms per token that a round trip per token costs on llvmpipe), and
 * brings back every pick finished by then; so the more steps one readback covers, the less of
 * that wait each token carries. The stream queues enough steps to cover ~25 ms at the rate it
 * measures (2 when a step takes longer than that, as on llvmpipe with a 1 B model), at most
 * MAX_GREEDY_DEPTH; a stream that stops early has run at most that many steps for nothing.
 */
export const MAX_GREEDY_DEPTH = 64;
const GREEDY_COVER_MS = 25;

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

  function checkRoom(positions: number) {
    if (position + positions > ctxSize) {
      throw new Error(
        `context full: ${position} + ${positions} positions exceed the context size ${ctxSize}`,
      );
    }
  }

  /**
   * Records one submit per chunk of ≤ maxBatch tokens (a chunk's uniforms are written with
   * queue.writeBuffer, so two chunks cannot share a submit); the last chunk runs the head, and
   * `finish` records what follows it in the same encoder.
   */
  function submitTokens(
    tokens: readonly number[],
    greedy: boolean,
    finish: (enc: GPUCommandEncoder) => void,
  ) {
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
      if (last) finish(enc);
      device.queue.submit([enc.finish()]);
      position += n;
    }
  }

  async function exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (busy) throw new Error("this session is already evaluating; await the previous call");
    busy = true;
    try {
      const out = await work();
      checkDevice(gpu);
      return out;
    } finally {
      busy = false;
    }
  }

  /** One readback at the end: the logits, or with `greedy` the argmax picked on the device. */
  function run(tokens: readonly number[], greedy: boolean): Promise<ArrayBuffer> {
    checkIds(tokens, config.vocabSize);
    checkRoom(tokens.length);
    return exclusive(() => {
      const bytes = greedy ? 4 : config.vocabSize * 4;
      submitTokens(
        tokens,
        greedy,
        (enc) => reader.copy(enc, greedy ? head.pick : head.logits, bytes),
      );
      return reader.read(bytes);
    });
  }

  const picks = createPickRing(device, MAX_GREEDY_DEPTH + 1);

  /**
   * `tokens`, then each pick fed back as the next step's token on the device (copied from the
   * head's pick into the token ids), up to `max` picks in all; steps stay queued ahead of the
   * reader (MAX_GREEDY_DEPTH), so the device does not wait for the host's round trip. The same picks
   * as evaluateGreedy(tokens) then evaluateGreedy([pick]) over and over. Stopped early (return
   * or break), it waits for the steps in flight and rewinds past the picks never read, so the
   * position is as if each read pick but the last had been fed (except for a model with a
   * recurrent state, which cannot rewind: there the position counts every step run).
   */
  async function* greedyStream(
    tokens: readonly number[],
    max: number,
  ): AsyncGenerator<number, void> {
    checkIds(tokens, config.vocabSize);
    if (!Number.isInteger(max) || max < 1) {
      throw new Error(`a greedy stream needs max ≥ 1, not ${max}`);
    }
    checkRoom(tokens.length + max - 1);
    if (busy) throw new Error("this session is already evaluating; await the previous call");
    busy = true;
    let queued = 0, read = 0, depth = 2;
    const started = performance.now();
    const keep = (enc: GPUCommandEncoder) => picks.copy(enc, head.pick, queued++);
    const step = () => {
      const enc = device.createCommandEncoder({ label: "greedy step" });
      enc.copyBufferToBuffer(head.pick, 0, ids, 0, 4);
      const pass = enc.beginComputePass();
      embed.update({ n: 1 });
      embed.encode(pass);
      stack.encode(pass, 1, position);
      head.encode(pass, 0, true);
      pass.end();
      keep(enc);
      device.queue.submit([enc.finish()]);
      picks.map(queued - 1);
      position++;
    };
    try {
      submitTokens(tokens, true, keep);
      picks.map(0);
      while (read < max) {
        while (queued < max && queued - read < depth) step();
        const pick = await picks.read(read);
        read++;
        const msPerPick = (performance.now() - started) / read;
        depth = Math.min(MAX_GREEDY_DEPTH, Math.max(2, Math.ceil(GREEDY_COVER_MS / msPerPick)));
        checkDevice(gpu);
        yield pick;
      }
    } finally {
      const ahead = queued - read;
      for (; read < queued; read++) await picks.read(read);
      busy = false;
      if (ahead > 0 && !config.recurrent) position -= ahead;
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
    evaluateGreedyStream: greedyStream,
    rewind(to) {
      checkRewind(position, to, stack.ring);
      if (recurrentRewind(config, position, to)) stack.clearRecurrent(0);
      position = to;
    },
    destroy() {
      for (const k of [stack, embed, head, reader, picks]) k.destroy();
      for (
        const b of [ids, ...Object.values(scratch).filter((b) => b instanceof GPUBuffer)]
      ) {
        (b as GPUBuffer).destroy();
      }
    },
  };
}

/**
 * Readback buffers for the picks of a greedy stream, used in turn (pick i in buffer i % size).
 * Each is mapped as soon as its step is submitted, not when it is read: Deno's mapAsync waits for
 * the whole queue and then 10 ms, so maps that wait together complete together, and the picks of
 * several finished steps come back after one wait.
 */
function createPickRing(device: GPUDevice, size: number) {
  const ring = Array.from({ length: size }, (_, i) =>
    device.createBuffer({
      label: `greedy pick ${i}`,
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    }));
  const mapped = new Array<Promise<void> | undefined>(size);
  return {
    copy(enc: GPUCommandEncoder, src: GPUBuffer, i: number) {
      enc.copyBufferToBuffer(src, 0, ring[i % size], 0, 4);
    },
    /** After the submit that copies pick i. */
    map(i: number) {
      mapped[i % size] = ring[i % size].mapAsync(GPUMapMode.READ, 0, 4);
    },
    async read(i: number): Promise<number> {
      const b = ring[i % size];
      await mapped[i % size];
      mapped[i % size] = undefined;
      const pick = new Uint32Array(b.getMappedRange(0, 4))[0];
      b.unmap();
      return pick;
    },
    destroy: () => ring.forEach((b) => b.destroy()),
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
