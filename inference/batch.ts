/**
 * Batched steps over several sequences that share one model: each sequence
 * owns a slot (its own KV cache); a step feeds new tokens to any set of
 * slots and returns the logits after each one's last token. The CPU batch
 * engine runs the layers once over the stacked rows (reference.ts forwardRows);
 * the WebGPU one lives in webgpu/batch-forward.ts; `sessionBatch` serves
 * any Engine by stepping its sessions one after another (no speed-up, the
 * same answers).
 */
import type { Engine, Session } from "./engine.ts";
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";
import type { SampledToken, SamplerOptions } from "./sampler.ts";
import {
  createRunState,
  embedTokens,
  forwardRows,
  outputLogitsRows,
  type RunState,
} from "./reference.ts";
import { cpuEngineFromModel, type CpuEngineInit, loadCpuModel } from "./cpu-engine.ts";
import { rewindRunState } from "./attention.ts";

/** New tokens for one slot in a step. */
export interface BatchRow {
  slot: number;
  tokens: readonly number[];
  /**
   * For engines that sample: whether this row wants a pick (false for a prompt chunk that does
   * not end the prompt). Engines that give logits ignore it.
   */
  sample?: boolean;
}

/** What a step gives per row: logits, or the engine's own pick (none where `sample` was false). */
export type StepOutput = Float32Array | SampledToken | undefined;

/** Penalties `decodeAhead` applies on the device as inference/sampler.ts does. */
export interface AheadPenalties {
  repeat: number;
  frequency: number;
  presence: number;
  /** How many of the latest tokens count (repeat_last_n): 1 .. the engine's penaltyWindowAhead. */
  window: number;
  /** The latest tokens of the sequence's history, at most `window`, oldest first. */
  recent: readonly number[];
}

/**
 * How `decodeAhead` picks a row's next tokens on the device in place of the plain argmax: as
 * inference/sampler.ts does (penalties, then top-k, top-p, min-p, temperature; no bias).
 */
export interface AheadSampling {
  temperature: number; // ≤ 0: the argmax (of the penalized logits)
  topK: number; // where temperature > 0: 1 .. the engine's sampleAheadTopK, below the vocabulary
  topP: number;
  minP: number;
  /**
   * The uniform draws in [0, 1) the row's sampler would make next (its generator's nextFloat),
   * at least steps - 1: like the sampler, a pick takes one only where more than one candidate
   * is left.
   */
  draws: readonly number[];
  penalties?: AheadPenalties;
}

/** One decode token for a slot: what `decodeAhead` starts each row from. */
export interface DecodeRow {
  slot: number;
  token: number;
  /** Absent: the engine feeds the row its argmax. */
  sampling?: AheadSampling;
}

/**
 * `decodeAhead`'s answer: `logits[j][i]` after row i's j-th token, where token 0 is the row's own
 * and token j > 0 is `fed[j - 1][i]`, the pick from `logits[j - 1][i]` that the engine fed itself
 * (the argmax, or the row's draw).
 */
export interface AheadOutput {
  logits: Float32Array[][];
  fed: number[][];
}

export interface AcquireOptions {
  /** The sequence's sampler, its seed resolved, for an engine that samples itself. */
  sampler: SamplerOptions;
}

/**
 * `Out` is Float32Array for the engines that give logits (the scheduler samples); an engine
 * that samples itself (a split model's last stage, mesh/pipeline-batch.ts) says `samples: true`
 * and gives SampledToken | undefined.
 */
export interface BatchEngine<Out extends StepOutput = Float32Array> {
  readonly maxSlots: number;
  readonly ctxSize: number;
  readonly vocabSize: number;
  /** Most tokens (all rows together) one step takes. */
  readonly maxRows: number;
  /**
   * Prompt tokens the scheduler should put in a step, where not its default: more for an engine
   * whose every step waits a fixed time beyond the work (WebGPU's readback in Deno).
   */
  readonly prefillRows?: number;
  /** The engine samples: step gives picks made with the options passed to acquire. */
  readonly samples?: true;
  /**
   * The largest top-k that `decodeAhead` draws with on the device (a row's `sampling`); absent
   * where it only feeds argmaxes.
   */
  readonly sampleAheadTopK?: number;
  /** The longest repeat_last_n whose penalties `decodeAhead` applies on the device. */
  readonly penaltyWindowAhead?: number;
  /** A free slot (its cache empty), or undefined when all are taken. */
  acquire(options?: AcquireOptions): number | undefined;
  /** Gives the slot back; its cache is dropped. */
  release(slot: number): void;
  position(slot: number): number;
  rewind(slot: number, position: number): void;
  /**
   * Per row, in row order (each slot at most once): the logits after its last token, or, for an
   * engine that samples, the pick after it (undefined where the row's `sample` was false).
   */
  step(rows: readonly BatchRow[]): Promise<Out[]>;
  /**
   * `steps` decode steps of one token per row in one round trip, for an engine whose every
   * readback costs a fixed wait (WebGPU in Deno): after each step the engine feeds every row the
   * argmax of its logits itself, or its draw (`sampling`). Each slot's position moves on by
   * `steps`; the caller samples
   * each step's logits and, where its pick was not the token the engine fed, rewinds the slot
   * past what it has to redo.
   */
  decodeAhead?(rows: readonly DecodeRow[], steps: number): Promise<AheadOutput>;
  close?(): void;
}

/** Slot bookkeeping shared by the engines: which are taken, checked errors. */
export function createSlotTable(maxSlots: number) {
  const taken = new Array<boolean>(maxSlots).fill(false);
  return {
    acquire(): number | undefined {
      const i = taken.indexOf(false);
      if (i < 0) return undefined;
      taken[i] = true;
      return i;
    },
    release(slot: number) {
      this.check(slot);
      taken[slot] = false;
    },
    check(slot: number) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= maxSlots || !taken[slot]) {
        throw new Error(`batch: slot ${slot} is not in use (slots 0..${maxSlots - 1})`);
      }
    },
    checkRows(rows: readonly BatchRow[], maxRows: number) {
      return this.checkCounts(rows.map((r) => ({ slot: r.slot, count: r.tokens.length })), maxRows);
    },
    /** Checks a step's slots and sizes (`count` new positions each); returns the total. */
    checkCounts(rows: readonly { slot: number; count: number }[], maxRows: number): number {
      const seen = new Set<number>();
      let total = 0;
      for (const r of rows) {
        this.check(r.slot);
        if (seen.has(r.slot)) throw new Error(`batch: slot ${r.slot} appears twice in one step`);
        if (!(Number.isInteger(r.count) && r.count > 0)) {
          throw new Error(`batch: slot ${r.slot} has no tokens`);
        }
        seen.add(r.slot);
        total += r.count;
      }
      if (rows.length === 0) throw new Error("batch: a step needs at least one row");
      if (total > maxRows) throw new Error(`batch: ${total} tokens exceed ${maxRows} per step`);
      return total;
    },
  };
}

/**
 * Slots whose caches are CPU RunStates (reference.ts) over the weights' layers: made on first
 * use and kept, so a slot's next sequence reuses its cache.
 */
export function createRunStateSlots(
  config: ModelConfig,
  weights: ModelWeights,
  ctxSize: number,
  maxSlots: number,
) {
  const table = createSlotTable(maxSlots);
  const states: (RunState | undefined)[] = new Array(maxSlots);
  const stateOf = (slot: number) => states[slot] ??= createRunState(config, weights, ctxSize);
  return {
    table,
    stateOf,
    acquire(): number | undefined {
      const slot = table.acquire();
      if (slot !== undefined) rewindRunState(stateOf(slot), 0);
      return slot;
    },
    release: (slot: number) => table.release(slot),
    position(slot: number): number {
      table.check(slot);
      return stateOf(slot).position;
    },
    rewind(slot: number, position: number) {
      table.check(slot);
      rewindRunState(stateOf(slot), position);
    },
  };
}

export interface CpuBatchInit {
  config: ModelConfig;
  weights: ModelWeights;
  ctxSize: number;
  maxSlots?: number; // default 8
  maxRows?: number; // default 512
}

/** CPU batching: one forward over the stacked rows of all slots in the step. */
export function createCpuBatch(init: CpuBatchInit): BatchEngine & {
  stepSync(rows: readonly BatchRow[]): Float32Array[];
} {
  const { config, weights, ctxSize } = init;
  const maxSlots = init.maxSlots ?? 8, maxRows = init.maxRows ?? 512;
  const slots = createRunStateSlots(config, weights, ctxSize, maxSlots);
  const { stateOf } = slots;

  function stepSync(rows: readonly BatchRow[]): Float32Array[] {
    slots.table.checkRows(rows, maxRows);
    const hidden = embedTokens(config, weights, rows.flatMap((r) => [...r.tokens]));
    const groups = rows.map((r) => ({ state: stateOf(r.slot), count: r.tokens.length }));
    forwardRows(config, weights, groups, hidden);
    const last: number[] = [];
    rows.reduce((end, r) => (last.push(end + r.tokens.length - 1), end + r.tokens.length), 0);
    return outputLogitsRows(config, weights, hidden, last);
  }

  return {
    maxSlots,
    ctxSize,
    vocabSize: config.vocabSize,
    maxRows,
    acquire: () => slots.acquire(),
    release: (slot) => slots.release(slot),
    position: (slot) => slots.position(slot),
    rewind: (slot, position) => slots.rewind(slot, position),
    step: (rows) => Promise.resolve().then(() => stepSync(rows)),
    stepSync,
  };
}

/**
 * Slots whose caches are sessions (an Engine's, or a WebGPU stage's), made on first use and kept:
 * a slot's next sequence rewinds its session to 0 instead of making another.
 */
export function createSessionSlots<
  S extends { readonly position: number; rewind(p: number): void },
>(
  maxSlots: number,
  create: () => S,
) {
  const table = createSlotTable(maxSlots);
  const sessions: (S | undefined)[] = new Array(maxSlots);
  const sessionOf = (slot: number) => sessions[slot] ??= create();
  return {
    table,
    sessionOf,
    acquire(): number | undefined {
      const slot = table.acquire();
      if (slot !== undefined && sessionOf(slot).position > 0) sessionOf(slot).rewind(0);
      return slot;
    },
    release: (slot: number) => table.release(slot),
    position(slot: number): number {
      table.check(slot);
      return sessionOf(slot).position;
    },
    rewind(slot: number, position: number) {
      table.check(slot);
      sessionOf(slot).rewind(position);
    },
  };
}

/** Any Engine as a BatchEngine: its sessions are the slots, stepped in turn. */
export function sessionBatch(engine: Engine, maxSlots = 8): BatchEngine {
  const slots = createSessionSlots<Session>(maxSlots, () => engine.createSession());
  return {
    maxSlots,
    ctxSize: engine.ctxSize,
    vocabSize: engine.config.vocabSize,
    maxRows: engine.ctxSize,
    acquire: slots.acquire,
    release: slots.release,
    position: slots.position,
    rewind: slots.rewind,
    async step(rows) {
      slots.table.checkRows(rows, Infinity);
      const out: Float32Array[] = [];
      for (const r of rows) {
        const s = slots.sessionOf(r.slot);
        out.push(s.evaluateAsync ? await s.evaluateAsync(r.tokens) : s.evaluate(r.tokens));
      }
      return out;
    },
  };
}

/** A loaded model with both faces: the Engine (single sessions) and its BatchEngine. */
export interface BatchedEngine {
  engine: Engine;
  batch: BatchEngine;
}

/**
 * The CPU engine with batching: one copy of the weights behind both faces.
 * Sessions of `engine` keep their own caches, apart from the batch's slots.
 */
export async function createBatchedCpuEngine(
  init: CpuEngineInit & { maxSlots?: number },
): Promise<BatchedEngine> {
  const model = await loadCpuModel(init);
  const { config, weights, ctxSize } = model;
  const batch = createCpuBatch({ config, weights, ctxSize, maxSlots: init.maxSlots });
  const engine = cpuEngineFromModel(model, init.path);
  return { engine, batch };
}
