/**
 * One pipeline stage of a split model (docs/protocol.md, stages): the layers [layerStart,
 * layerEnd) loaded alone, batched over slots like BatchEngine (batch.ts) so several sessions'
 * rows go through in one step. Stage 0 also embeds token ids; the last stage also turns hidden
 * states into logits. Only this range's tensors are read from the GGUF.
 */
import type { GgufValue } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import { type Tokenizer, tokenizerFromMetadata } from "./tokenizer/mod.ts";
import type { ModelWeights } from "./weights.ts";
import { createRunStateSlots, createSessionSlots, type createSlotTable } from "./batch.ts";
import { cpuAdapterName, loadCpuModel } from "./cpu-engine.ts";
import { embedTokens, forwardRows, outputLogitsRows } from "./reference.ts";
import type { Gpu } from "./webgpu/device.ts";
import { createWebGpuStage, type WebGpuStageSession } from "./webgpu/webgpu-stage.ts";

export interface StageBatchInfo {
  backend: "cpu" | "webgpu";
  adapter: string; // what runs the arithmetic, in words
  /** Bytes of weights this stage holds. */
  weightBytes: number;
  /** Bytes read from the GGUF file to load this stage (header and tensors). */
  bytesRead: number;
  loadMs: number;
}

/** A slot's new rows in a forward step: `count` consecutive positions of its sequence. */
export interface StageRows {
  slot: number;
  count: number;
}

export interface StageBatch {
  readonly config: ModelConfig;
  readonly metadata: Record<string, GgufValue>;
  /** The model's tokenizer (built on first use: only a coordinator needs it). */
  readonly tokenizer: Tokenizer;
  readonly layerStart: number;
  readonly layerEnd: number;
  readonly ctxSize: number;
  readonly maxSlots: number;
  /** Most rows (all slots together) one forward takes. */
  readonly maxRows: number;
  readonly info: StageBatchInfo;
  /** A free slot (its cache empty), or undefined when all are taken. */
  acquire(): number | undefined;
  /** Gives the slot back; its cache is dropped. */
  release(slot: number): void;
  position(slot: number): number;
  rewind(slot: number, position: number): void;
  /** Stage 0 only (else throws): hidden states (n × dim) of the tokens. */
  embed(tokens: readonly number[]): Promise<Float32Array>;
  /**
   * Runs the layers on the stacked rows of `rows` (hidden: Σcount × dim, in row order) in
   * place; each slot's cache grows by its count.
   */
  forward(rows: readonly StageRows[], hidden: Float32Array): Promise<void>;
  /** Last stage only (else throws): logits of the given row indices of `hidden`. */
  logits(hidden: Float32Array, rows: readonly number[]): Promise<Float32Array[]>;
  /** Frees the weights (GPU buffers). */
  close(): void;
}

export interface StageBatchInit {
  path: string;
  layerStart: number;
  layerEnd: number;
  ctxSize?: number;
  maxSlots?: number; // default 8
  maxRows?: number; // default 512
  gpu?: boolean; // WebGPU instead of the CPU kernels
  /** With `gpu`: a device to share (tests load several stages on one); default a new one. */
  device?: Gpu;
  onProgress?: (loaded: number, total: number) => void;
}

/** Loads the layers [layerStart, layerEnd) of the model at `path`, on the CPU or WebGPU. */
export function loadStageBatch(init: StageBatchInit): Promise<StageBatch> {
  return init.gpu ? loadGpuStageBatch(init) : loadCpuStageBatch(init);
}

/** What both backends check: the range's ends and each call's rows. */
function stageChecks(config: ModelConfig, layerStart: number, layerEnd: number) {
  const range = `stage [${layerStart}, ${layerEnd}) of ${config.layers} layers`;
  return {
    checkFirst() {
      if (layerStart !== 0) {
        throw new Error(`${range} cannot embed tokens: only the first stage holds the embedding`);
      }
    },
    checkLast() {
      if (layerEnd !== config.layers) {
        throw new Error(`${range} cannot give logits: only the last stage holds the head`);
      }
    },
    /** Checks a forward's rows against the slots and `hidden`'s length. */
    checkForward(
      slots: ReturnType<typeof createSlotTable>,
      rows: readonly StageRows[],
      hidden: Float32Array,
      maxRows: number,
    ) {
      const n = slots.checkCounts(rows, maxRows);
      if (hidden.length !== n * config.dim) {
        throw new Error(
          `${range}: ${n} rows of ${config.dim} need ${n * config.dim} hidden values, ` +
            `got ${hidden.length}`,
        );
      }
    },
    checkLogitRows(hidden: Float32Array, rows: readonly number[]) {
      const n = hidden.length / config.dim;
      for (const r of rows) {
        if (!Number.isInteger(r) || r < 0 || r >= n) {
          throw new Error(`${range}: row ${r} is not one of the ${n} rows of hidden`);
        }
      }
    },
  };
}

/** The tokenizer, built on first use: only a coordinator needs it. */
function lazyTokenizer(metadata: Record<string, GgufValue>): () => Tokenizer {
  let tokenizer: Tokenizer | undefined;
  return () => tokenizer ??= tokenizerFromMetadata(metadata);
}

/** Weight bytes held: matrices as stored, vectors as f32; a tied head counted once. */
function heldWeightBytes(w: ModelWeights): number {
  const seen = new Set<Uint8Array | Float32Array>();
  const add = (x: { data: Uint8Array } | Float32Array | undefined) => {
    if (x) seen.add(x instanceof Float32Array ? x : x.data);
  };
  add(w.tokenEmbedding);
  add(w.output);
  add(w.outputNorm);
  for (const { moe, linear, ...layer } of w.layers) {
    // A MoE layer's matrices (expert stacks, router, shared expert) sit one level down, as do
    // a linear-attention layer's (qwen35moe).
    const nested = [...Object.values(moe ?? {}), ...Object.values(linear ?? {})];
    for (const x of [...Object.values(layer), ...nested]) {
      if (x instanceof Float32Array || x?.data instanceof Uint8Array) add(x);
    }
  }
  let total = 0;
  for (const x of seen) total += x.byteLength;
  return total;
}

async function loadCpuStageBatch(init: StageBatchInit): Promise<StageBatch> {
  const model = await loadCpuModel(init);
  const { file, config, weights, ctxSize } = model;
  const maxSlots = init.maxSlots ?? 8, maxRows = init.maxRows ?? 512;
  const slots = createRunStateSlots(config, weights, ctxSize, maxSlots);
  const { layerStart, layerEnd } = weights;
  const face = stageChecks(config, layerStart, layerEnd);
  const tokenizer = lazyTokenizer(file.metadata);
  const info: StageBatchInfo = {
    backend: "cpu",
    adapter: cpuAdapterName(),
    weightBytes: heldWeightBytes(weights),
    bytesRead: file.bytesRead,
    loadMs: model.loadMs,
  };
  let closed = false;
  const open = () => {
    if (closed) throw new Error("this stage is closed");
  };
  return {
    config,
    metadata: file.metadata,
    get tokenizer() {
      return tokenizer();
    },
    layerStart,
    layerEnd,
    ctxSize,
    maxSlots,
    maxRows,
    info,
    acquire: () => (open(), slots.acquire()),
    release: (slot) => slots.release(slot),
    position: (slot) => slots.position(slot),
    rewind: (slot, position) => slots.rewind(slot, position),
    embed: (tokens) =>
      Promise.resolve().then(() => {
        open();
        face.checkFirst();
        return embedTokens(config, weights, tokens);
      }),
    forward: (rows, hidden) =>
      Promise.resolve().then(() => {
        open();
        face.checkForward(slots.table, rows, hidden, maxRows);
        const groups = rows.map((r) => ({ state: slots.stateOf(r.slot), count: r.count }));
        forwardRows(config, weights, groups, hidden);
      }),
    logits: (hidden, rows) =>
      Promise.resolve().then(() => {
        open();
        face.checkLast();
        face.checkLogitRows(hidden, rows);
        return rows.length === 0 ? [] : outputLogitsRows(config, weights, hidden, rows);
      }),
    close() {
      closed = true;
    },
  };
}

/**
 * The WebGPU stage: one stage session (its own KV cache and scratch) per slot, stepped one
 * after another; the device's work is queued one call at a time, as its read-back buffers are
 * shared.
 */
async function loadGpuStageBatch(init: StageBatchInit): Promise<StageBatch> {
  const stage = await createWebGpuStage({ ...init, gpu: init.device });
  const { config, ctxSize } = stage;
  const maxSlots = init.maxSlots ?? 8, maxRows = init.maxRows ?? 512;
  const slots = createSessionSlots<WebGpuStageSession>(maxSlots, () => stage.createSession());
  const { layerStart, layerEnd } = stage;
  const face = stageChecks(config, layerStart, layerEnd);
  const tokenizer = lazyTokenizer(stage.metadata);
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const result = queue.then(() => {
      if (closed) throw new Error("this stage is closed");
      return run();
    });
    queue = result.catch(() => {});
    return result;
  };
  return {
    config,
    metadata: stage.metadata,
    get tokenizer() {
      return tokenizer();
    },
    layerStart,
    layerEnd,
    ctxSize,
    maxSlots,
    maxRows,
    info: { backend: "webgpu", ...stage.info },
    acquire() {
      if (closed) throw new Error("this stage is closed");
      return slots.acquire();
    },
    release: slots.release,
    position: slots.position,
    rewind: slots.rewind,
    embed: (tokens) =>
      serial(() => {
        face.checkFirst();
        return stage.embed(tokens);
      }),
    forward: (rows, hidden) =>
      serial(async () => {
        face.checkForward(slots.table, rows, hidden, maxRows);
        const { dim } = config;
        let offset = 0;
        for (const r of rows) {
          await slots.sessionOf(r.slot).forward(
            hidden.subarray(offset, offset + r.count * dim),
            r.count,
          );
          offset += r.count * dim;
        }
      }),
    logits: (hidden, rows) =>
      serial(async () => {
        face.checkLast();
        face.checkLogitRows(hidden, rows);
        const out: Float32Array[] = [];
        for (const r of rows) out.push(await stage.logits(hidden, r));
        return out;
      }),
    close() {
      if (closed) return;
      closed = true;
      // After any call already queued, so none runs on freed buffers.
      void queue.then(() => stage.close());
    },
  };
}
