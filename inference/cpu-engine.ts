/**
 * The CPU engine: Grove's reference forward pass over weights kept in their
 * stored (quantized) form.
 */
import { openGguf } from "./gguf.ts";
import { modelConfigOf } from "./model-config.ts";
import { loadWeights, type ModelWeights } from "./weights.ts";
import {
  createRunState,
  embedTokens,
  forwardLayers,
  outputLogits,
  type RunState,
} from "./reference.ts";
import { type KvType, rewindRunState } from "./attention.ts";
import { SCRATCH_ROWS } from "./model-shape.ts";
import { availableMemory, chooseContextSize } from "./context-size.ts";
import { tokenizerFromMetadata } from "./tokenizer/mod.ts";
import { embedSequence } from "./embed.ts";
import { wasmKernelVariant, wasmThreads } from "./quant/mod.ts";
import { nativeThreads } from "./quant/native/mod.ts";
import type { Engine, Session, Stage, StageSession } from "./engine.ts";
import type { ModelConfig } from "./model-config.ts";

export interface CpuEngineInit {
  path: string;
  /** Default: the model's own length where this machine's memory allows (context-size.ts). */
  ctxSize?: number;
  /** How the KV cache stores keys and values; default f16, as llama.cpp's default cache. */
  kvType?: KvType;
  layerStart?: number;
  layerEnd?: number;
  onProgress?: (loaded: number, total: number) => void;
}

function weightBytes(w: ModelWeights): number {
  let total = 0;
  const add = (m?: { data: Uint8Array }) => total += m?.data.byteLength ?? 0;
  add(w.tokenEmbedding);
  if (w.output !== w.tokenEmbedding) add(w.output);
  for (const l of w.layers) [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].forEach(add);
  for (const m of w.layers.map((l) => l.moe)) {
    if (m) {
      [m.router, m.gateExps, m.upExps, m.downExps, m.sharedGate, m.sharedUp, m.sharedDown]
        .forEach(add);
    }
  }
  for (const x of w.layers.map((l) => l.linear)) {
    if (x) [x.wqkv, x.wz, x.wBeta, x.wAlpha, x.wOut].forEach(add);
  }
  return total;
}

function rewindState(state: RunState, position: number) {
  rewindRunState(state, position);
}

export async function loadCpuModel(init: CpuEngineInit) {
  const started = performance.now();
  const file = await openGguf(init.path);
  const config = modelConfigOf(file);
  const kvType = init.kvType ?? "f16";
  // Chosen before the weights take their share of the memory available.
  const ctxSize = init.ctxSize ??
    chooseContextSize(file, config, availableMemory(), kvType).ctxSize;
  const weights = await loadWeights(file, config, {
    layerStart: init.layerStart,
    layerEnd: init.layerEnd,
    onTensor: (_name, loaded, total) => init.onProgress?.(loaded, total),
  });
  return { file, config, weights, ctxSize, kvType, loadMs: performance.now() - started };
}

/** A session over a layer range of a model (a pipeline stage). */
export function createStageSession(
  config: ModelConfig,
  weights: ModelWeights,
  ctxSize: number,
  kvType: KvType = "f16",
): StageSession {
  const state = createRunState(config, weights, ctxSize, kvType);
  return {
    get position() {
      return state.position;
    },
    forward: (hidden, n) => forwardLayers(config, weights, state, hidden, n),
    rewind: (position) => rewindState(state, position),
  };
}

/** Loads only the layers [layerStart, layerEnd) (and the embedding or head at the ends). */
export async function createCpuStage(
  init: CpuEngineInit & { layerStart: number; layerEnd: number },
): Promise<Stage> {
  const { config, weights, ctxSize, kvType } = await loadCpuModel(init);
  return {
    config,
    layerStart: weights.layerStart,
    layerEnd: weights.layerEnd,
    ctxSize,
    embed: (tokens) => embedTokens(config, weights, tokens),
    logits: (hidden, row) => outputLogits(config, weights, hidden, row),
    createSession: () => createStageSession(config, weights, ctxSize, kvType),
  };
}

/** What runs the arithmetic, for logs and stats lines. */
export function cpuAdapterName(): string {
  const native = nativeThreads();
  if (native > 0) {
    return `CPU, native kernels (built for this CPU), ${native} of ${navigator.hardwareConcurrency} cores`;
  }
  const variant = wasmKernelVariant();
  const kernels = variant ? `WASM SIMD${variant === "relaxed" ? " (relaxed)" : ""}` : "TypeScript";
  const threads = variant ? wasmThreads() : 1;
  return `CPU, ${kernels} kernels, ${threads} of ${navigator.hardwareConcurrency} cores`;
}

/** The Engine face of a loaded CPU model: sessions with their own KV caches. */
export function cpuEngineFromModel(
  model: Awaited<ReturnType<typeof loadCpuModel>>,
  path: string,
): Engine {
  const { file, config, weights, ctxSize, kvType, loadMs } = model;
  return {
    info: {
      backend: "cpu",
      adapter: cpuAdapterName(),
      path,
      weightBytes: weightBytes(weights),
      loadMs,
    },
    config,
    metadata: file.metadata,
    tokenizer: tokenizerFromMetadata(file.metadata),
    ctxSize,
    createSession(): Session {
      const state = createRunState(config, weights, ctxSize, kvType);
      return {
        get position() {
          return state.position;
        },
        evaluate(tokens) {
          if (tokens.length === 0) throw new Error("evaluate needs at least one token");
          // Steps of at most SCRATCH_ROWS rows, as planned: a sliding-window layer's ring holds
          // its window and that many rows (swa-cache.ts), and each row's numbers are its own.
          for (let at = 0;; at += SCRATCH_ROWS) {
            const chunk = tokens.slice(at, at + SCRATCH_ROWS);
            const hidden = embedTokens(config, weights, chunk);
            forwardLayers(config, weights, state, hidden, chunk.length);
            if (at + chunk.length === tokens.length) {
              return outputLogits(config, weights, hidden, chunk.length - 1);
            }
          }
        },
        rewind: (position) => rewindState(state, position),
      };
    },
    embed: (tokens, pooling) => embedSequence(config, weights, tokens, { pooling }),
  };
}

export async function createCpuEngine(init: CpuEngineInit): Promise<Engine> {
  return cpuEngineFromModel(await loadCpuModel(init), init.path);
}
