/**
 * A layer range of a model on the GPU: one pipeline stage. Like the CPU
 * `Stage`, hidden states go in and come out on the host (they travel between
 * stages); each call reads its result back once, so the methods are async.
 */
import type { GgufValue } from "../gguf.ts";
import type { ModelConfig } from "../model-config.ts";
import {
  createEmbedder,
  createHead,
  createReader,
  createScratch,
  scratchBuffer,
  sequenceStack,
} from "./forward.ts";
import { recurrentRewind } from "./hybrid-layer.ts";
import { writeTokenIds } from "./kernels/embed.ts";
import {
  checkDevice,
  checkIds,
  checkRewind,
  destroyWeights,
  type GpuModel,
  loadGpuModel,
  type WebGpuEngineInit,
} from "./webgpu-engine.ts";

export interface WebGpuStageSession {
  readonly position: number;
  /** Runs the range on `n` new positions of `hidden` (n × dim) in place. */
  forward(hidden: Float32Array, n: number): Promise<void>;
  rewind(position: number): void;
  destroy(): void;
}

/** What loading the stage took. */
export interface WebGpuStageInfo {
  adapter: string;
  /** Weight bytes on the device. */
  weightBytes: number;
  /** Bytes read from the GGUF file (header and this range's tensors). */
  bytesRead: number;
  loadMs: number;
}

/** The asynchronous twin of `Stage` (inference/engine.ts). */
export interface WebGpuStage {
  config: ModelConfig;
  metadata: Record<string, GgufValue>;
  layerStart: number;
  layerEnd: number;
  ctxSize: number;
  info: WebGpuStageInfo;
  /** Hidden states (n × dim) of the tokens; only the first stage holds the embedding. */
  embed(tokens: readonly number[]): Promise<Float32Array>;
  /** Logits of row `row` of `hidden`; only the last stage holds the head. */
  logits(hidden: Float32Array, row: number): Promise<Float32Array>;
  createSession(): WebGpuStageSession;
  close(): void;
}

function createStageSession(model: GpuModel): WebGpuStageSession {
  const { gpu, config, weights, ctxSize, maxBatch } = model;
  const { device } = gpu;
  const { dim } = config;
  const scratch = createScratch(device, config, maxBatch);
  const stack = sequenceStack(gpu, config, weights, ctxSize, scratch);
  const reader = createReader(device, maxBatch * dim * 4, "hidden");
  let position = 0;
  return {
    get position() {
      return position;
    },
    async forward(hidden, n) {
      if (hidden.length < n * dim) {
        throw new Error(`forward: ${hidden.length} values hold fewer than ${n} rows of ${dim}`);
      }
      if (position + n > ctxSize) {
        throw new Error(
          `context full: ${position} + ${n} positions exceed the context size ${ctxSize}`,
        );
      }
      for (let start = 0; start < n; start += maxBatch) {
        const rows = Math.min(maxBatch, n - start);
        device.queue.writeBuffer(
          scratch.hidden,
          0,
          hidden as BufferSource,
          start * dim,
          rows * dim,
        );
        const enc = device.createCommandEncoder({ label: "stage forward" });
        const pass = enc.beginComputePass();
        stack.encode(pass, rows, position);
        pass.end();
        reader.copy(enc, scratch.hidden, rows * dim * 4);
        device.queue.submit([enc.finish()]);
        position += rows;
        hidden.set(new Float32Array(await reader.read(rows * dim * 4)), start * dim);
        checkDevice(gpu);
      }
    },
    rewind(to) {
      checkRewind(position, to, stack.ring);
      if (recurrentRewind(config, position, to)) stack.clearRecurrent(0);
      position = to;
    },
    destroy() {
      stack.destroy();
      reader.destroy();
      for (const b of Object.values(scratch)) if (b instanceof GPUBuffer) b.destroy();
    },
  };
}

/** Loads only the layers [layerStart, layerEnd) (and the embedding or head at the ends). */
export async function createWebGpuStage(
  init: WebGpuEngineInit & { layerStart: number; layerEnd: number },
): Promise<WebGpuStage> {
  const model = await loadGpuModel(init);
  const { gpu, config, weights, maxBatch } = model;
  const { device } = gpu;
  const { dim } = config;
  const first = weights.layerStart === 0;
  const last = weights.layerEnd === config.layers;
  // Entry and exit scratch, made only where this stage holds the embedding / head.
  const ids = scratchBuffer(device, maxBatch, "token ids");
  const rows = scratchBuffer(device, maxBatch * dim, "embedded rows");
  const embedder = first ? createEmbedder(device, weights, ids, rows) : undefined;
  const head = last ? createHead(gpu, config, weights, rows) : undefined;
  const reader = createReader(device, Math.max(maxBatch * dim, config.vocabSize) * 4, "stage");
  const sessions = new Set<WebGpuStageSession>();

  return {
    config,
    metadata: model.metadata,
    layerStart: weights.layerStart,
    layerEnd: weights.layerEnd,
    ctxSize: model.ctxSize,
    info: {
      adapter: gpu.adapterName,
      weightBytes: weights.bytes,
      bytesRead: model.file.bytesRead,
      loadMs: model.loadMs,
    },
    async embed(tokens) {
      // Throws "not the first stage" like the CPU stage.
      if (!embedder) createEmbedder(device, weights, ids, rows);
      checkIds(tokens, config.vocabSize);
      const out = new Float32Array(tokens.length * dim);
      for (let start = 0; start < tokens.length; start += maxBatch) {
        const chunk = tokens.slice(start, start + maxBatch);
        writeTokenIds(device, ids, chunk, config.vocabSize);
        const enc = device.createCommandEncoder({ label: "stage embed" });
        const pass = enc.beginComputePass();
        embedder!.update({ n: chunk.length });
        embedder!.encode(pass);
        pass.end();
        reader.copy(enc, rows, chunk.length * dim * 4);
        device.queue.submit([enc.finish()]);
        out.set(new Float32Array(await reader.read(chunk.length * dim * 4)), start * dim);
      }
      checkDevice(gpu);
      return out;
    },
    async logits(hidden, row) {
      if (!head) createHead(gpu, config, weights, rows); // throws "not the last stage"
      device.queue.writeBuffer(rows, 0, hidden as BufferSource, row * dim, dim);
      const enc = device.createCommandEncoder({ label: "stage head" });
      const pass = enc.beginComputePass();
      head!.encode(pass, 0, false);
      pass.end();
      reader.copy(enc, head!.logits, config.vocabSize * 4);
      device.queue.submit([enc.finish()]);
      const out = new Float32Array(await reader.read(config.vocabSize * 4));
      checkDevice(gpu);
      return out;
    },
    createSession() {
      const s = createStageSession(model);
      sessions.add(s);
      return s;
    },
    close() {
      for (const s of sessions) s.destroy();
      sessions.clear();
      embedder?.destroy();
      head?.destroy();
      reader.destroy();
      ids.destroy();
      rows.destroy();
      destroyWeights(weights);
    },
  };
}
