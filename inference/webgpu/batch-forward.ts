/**
 * The GPU forward pass over several sequences at once (the BatchEngine of
 * inference/batch.ts): the rows of all sequences in a step are stacked, so
 * every weight product runs once with n = total rows (the matmul kernel reads
 * each weight unit once for a tile of rows). RoPE, the cache writes and
 * attention read each row's (slot, position) from a small table written before
 * each submit (the ROWS variants of kernels/rope.ts and kernels/attention.ts); one
 * KV cache buffer per layer holds every slot, bound over the slots in use only, widened when a
 * slot past them is first acquired (slot-kv-cache.ts). Each step is one readback, its rows in
 * submits of the scratch's rows (a long prompt's step in several): the last row of each
 * sequence is gathered, normed and sent through the head in the submit that holds it.
 */
import type {
  AheadOutput,
  AheadPenalties,
  AheadSampling,
  BatchEngine,
  BatchRow,
  DecodeRow,
} from "../batch.ts";
import { createSlotTable } from "../batch.ts";
import {
  checkDevice,
  checkIds,
  engineFromModel,
  type GpuModel,
  loadGpuModel,
  type WebGpuEngine,
  type WebGpuEngineInit,
} from "./webgpu-engine.ts";
import type { ModelConfig } from "../model-config.ts";
import type { Gpu } from "./device.ts";
import type { GpuModelWeights } from "./load-weights.ts";
import {
  createEmbedder,
  createGrowingReader,
  createLayerStack,
  createScratch,
  type GpuScratch,
  logitSoftcap,
  type Placed,
  placed,
  type Placement,
  type Product,
  product,
  scratchBuffer,
} from "./forward.ts";
import { bindAttentionRows, bindKvWriteRows, defaultAttentionLayout } from "./kernels/attention.ts";
import type { BoundKernel } from "./kernels/bound-kernel.ts";
import { createSlotKvCache, type SlotKvCache } from "./slot-kv-cache.ts";
import { bindRopeRows } from "./kernels/rope.ts";
import { layerAttention, layerRope } from "./gemma3.ts";
import { bindRowNorm } from "./kernels/row_norm.ts";
import {
  bindAppend,
  bindArgmax,
  bindPenalize,
  bindSample,
  MAX_PENALTY_WINDOW,
  MAX_TOP_K,
  type PenaltyParams,
  type SampleParams,
} from "./kernels/argmax.ts";
import { writeTokenIds } from "./kernels/embed.ts";
import { createRecurrentStates, recurrentRewind } from "./hybrid-layer.ts";
import { ringRowsOf, ringTrackOf } from "./ring-cache.ts";
import { ringRewind, ringWrote } from "../swa-cache.ts";

/** The most draws a row of decodeAhead may use: its steps less one. */
const MAX_AHEAD_DRAWS = 64;
/**
 * Tokens a step takes by default. A step runs in chunks of the scratch's rows (the model's
 * maxBatch), a submit each, and reads back once: Deno's readback waits 10 ms beyond the work, so
 * a long prompt in steps of one chunk would wait that per chunk.
 */
const STEP_ROWS = 512;

export interface GpuBatchOptions {
  maxSlots?: number; // default 8
  maxRows?: number; // tokens per step; default STEP_ROWS
  /** Rows per submit, the scratch's (default and most: the model's maxBatch). */
  chunkRows?: number;
}

export interface GpuBatch extends BatchEngine {
  /** KV cache bytes bound now: one slot's per slot up to the highest acquired. */
  kvBytes(): number;
  /** One slot's KV cache, its context full (what the node's memory line predicts). */
  kvSlotBytes: number;
  close(): void;
}

/** `bind()` placed as `placed` does, bound again after the cache's bindings widen. */
function placedOnCache<P>(
  kv: SlotKvCache,
  bind: () => BoundKernel<P>,
  params: (n: number) => P,
): Placed {
  let kernel = bind(), bound = kv.generation;
  return {
    encode(pass, n) {
      if (bound !== kv.generation) {
        kernel.destroy();
        kernel = bind();
        bound = kv.generation;
      }
      kernel.update(params(n));
      kernel.encode(pass);
    },
    destroy: () => kernel.destroy(),
  };
}

/**
 * Stacked rows of several sequences: row t belongs to cache slot rowTable[2t]
 * at position rowTable[2t + 1] (written once per step); one cache buffer per
 * layer holds every slot (the kernels bind those in use), slot s owning rows s * ctxSize ...
 */
function rowsPlacement(
  gpu: Gpu,
  config: ModelConfig,
  weights: GpuModelWeights,
  scratch: GpuScratch,
  rowTable: GPUBuffer,
  maxSlots: number,
  ctxSize: number,
): Placement & { kv: SlotKvCache } {
  const { device } = gpu;
  const { heads, kvHeads, headDim, valueDim } = config;
  const { q, k, v, att } = scratch;
  // A sliding-window layer's slots are rings of `rings[li]` rows each (ring-cache.ts).
  const layers = weights.layers.length;
  const rings = ringRowsOf(config, weights.layerStart, layers, ctxSize, scratch.maxBatch);
  const slotRows = rings.map((r) => r || ctxSize);
  const kv = createSlotKvCache(device, {
    ...config,
    layers,
    ctxSize,
    slotRows,
    cached: weights.layers.map((w) => !w.linear), // qwen35moe's linear layers keep none
    maxSlots,
  });
  const rope = { n: 1, headDim, ropeDim: config.ropeDim };
  const attnShape = { heads, kvHeads, headDim, valueDim };
  const kvShape = { kDim: kvHeads * headDim, vDim: kvHeads * valueDim };
  const at = (li: number) => ({ ctx: slotRows[li], ring: rings[li] });
  // qwen35moe: each slot's linear-layer state, rows reading their slot from the row table
  const recurrent = createRecurrentStates(
    gpu,
    config,
    weights.layerStart,
    weights.layerEnd,
    maxSlots,
    rowTable,
  );
  return {
    check: () => {}, // step() checks each sequence's room
    rope: (x, h, li) => {
      const { table, ropeScale } = layerRope(config, weights, li);
      return placed(
        bindRopeRows(device, config.ropeStyle, { v: x, table, rows: rowTable }, {
          ...rope,
          ropeScale,
          heads: h,
        }),
        (n) => ({ ...rope, ropeScale, heads: h, n }),
      );
    },
    kvWrite: (li) =>
      placedOnCache(
        kv,
        () =>
          bindKvWriteRows(
            device,
            { rows: rowTable, k, v, ...kv.binding(li) },
            { n: 1, ...kvShape, ...at(li) },
          ),
        (n) => ({ ...kvShape, ...at(li), n }),
      ),
    attention: (li) => {
      const shape = { ...attnShape, ...layerAttention(config, weights, li), ...at(li) };
      return placedOnCache(
        kv,
        () =>
          bindAttentionRows(
            device,
            {
              rows: rowTable,
              q,
              ...kv.binding(li),
              out: att,
              sinks: weights.layers[li].sinks,
            },
            { n: 1, ...shape },
            defaultAttentionLayout(gpu),
          ),
        (n) => ({ ...shape, n }),
      );
    },
    recurrent,
    kv,
    destroy: () => (kv.destroy(), recurrent?.destroy()),
  };
}

export function createGpuBatch(model: GpuModel, options: GpuBatchOptions = {}): GpuBatch {
  const { gpu, config, weights, ctxSize } = model;
  const { device } = gpu;
  const maxSlots = options.maxSlots ?? 8;
  const chunkRows = Math.min(options.chunkRows ?? model.maxBatch, model.maxBatch);
  const maxRows = options.maxRows ?? Math.max(STEP_ROWS, chunkRows);
  if (!weights.tokenEmbedding || !weights.output || !weights.outputNorm) {
    throw new Error("a batched engine runs the whole model (embedding to head)");
  }
  const { dim, vocabSize, normEps: eps } = config;
  const scratch = createScratch(device, config, chunkRows);
  const { hidden } = scratch;
  const ids = scratchBuffer(device, chunkRows, "batch token ids");
  const rowTable = scratchBuffer(device, 2 * chunkRows, "batch rows (slot, position)");
  const last = scratchBuffer(device, maxSlots * dim, "batch last rows");
  const logits = scratchBuffer(device, maxSlots * vocabSize, "batch logits");
  const placement = rowsPlacement(gpu, config, weights, scratch, rowTable, maxSlots, ctxSize);
  const stack = createLayerStack(gpu, config, weights, scratch, placement);
  const embed = createEmbedder(device, weights, ids, hidden);
  // in place
  const headNorm = bindRowNorm(device, { x: last, weight: weights.outputNorm }, {
    n: dim,
    rows: 1,
    eps,
  });
  const head: Product = product(gpu, weights.output, last, logits, {});
  const softcap = logitSoftcap(device, config, logits, vocabSize);
  const reader = createGrowingReader(device, "batch logits");

  const slots = createSlotTable(maxSlots);
  const positions = new Array<number>(maxSlots).fill(0);
  const ringRows = ringRowsOf(
    config,
    weights.layerStart,
    weights.layers.length,
    ctxSize,
    chunkRows,
  );
  const rings = Array.from({ length: maxSlots }, () => ringTrackOf(config, ringRows));
  let busy = false;

  // A rewind after running ahead needs every layer's cache to hold past positions: not a
  // recurrent state, nor a sliding window's ring.
  const runsAhead = !config.recurrent && !ringRows.some((r) => r > 0);
  // decodeAhead: per row, kernels that write its next token id in place (bound at their first
  // use): its argmax, or a draw where it samples, row i's draws from draws[i * MAX_AHEAD_DRAWS],
  // drawn[i] counting those used.
  const sampleAheadTopK = runsAhead ? Math.min(MAX_TOP_K, vocabSize - 1) : 0;
  const draws = scratchBuffer(device, maxSlots * MAX_AHEAD_DRAWS, "batch sampling draws");
  const drawn = scratchBuffer(device, maxSlots, "batch sampling draws used");
  // Rows with penalties pick from `work`: their logits copied, then penalized (each row's recent
  // tokens a ring in `recent`, its start and length in `ring`); made at their first use.
  let penalty: { work: GPUBuffer; recent: GPUBuffer; ring: GPUBuffer } | undefined;
  const penaltyBuffers = () =>
    penalty ??= {
      work: scratchBuffer(device, maxSlots * vocabSize, "batch penalized logits"),
      recent: scratchBuffer(device, maxSlots * MAX_PENALTY_WINDOW, "batch recent tokens"),
      ring: scratchBuffer(device, 2 * maxSlots, "batch recent tokens' rings"),
    };
  const bound = new Map<string, BoundKernel<unknown>>();
  /** Row i's kernel `name`, bound at its first use, its params updated for this round. */
  function kernelFor<P>(name: string, i: number, bind: () => BoundKernel<P>, params: P) {
    const key = `${name} ${i}`;
    let kernel = bound.get(key) as BoundKernel<P> | undefined;
    if (!kernel) bound.set(key, kernel = bind());
    kernel.update(params);
    return kernel;
  }
  const ahead = createGrowingReader(device, "batch decode ahead");

  /**
   * Row i's kernels after each step of this round: its argmax, or, where it samples, the
   * penalties (its logits copied to work first: `penalized`) and its pick, as sampler.ts makes it.
   */
  function pickFor(i: number, s: AheadSampling | undefined) {
    const offset = i * vocabSize, penalties = s?.penalties;
    const source = penalties ? penaltyBuffers().work : logits;
    const kernels = [];
    if (penalties) {
      const { work, recent, ring } = penaltyBuffers();
      const p: PenaltyParams = { offset, row: i, ...penalties };
      kernels.push(
        kernelFor("penalize", i, () => bindPenalize(device, { logits, work, recent, ring }, p), p),
      );
    }
    if (s && s.temperature > 0) {
      const params: SampleParams = {
        n: vocabSize,
        k: s.topK,
        offset,
        outOffset: i,
        temperature: s.temperature,
        topP: s.topP,
        minP: s.minP,
        firstDraw: i * MAX_AHEAD_DRAWS,
      };
      const name = penalties ? "sample penalized" : "sample";
      const bind = () => bindSample(device, { logits: source, ids, draws, drawn }, params);
      kernels.push(kernelFor(name, i, bind, params));
    } else {
      const params = { n: vocabSize, offset, outOffset: i };
      const name = penalties ? "argmax penalized" : "argmax";
      const bind = () => bindArgmax(device, { logits: source, ids }, params);
      kernels.push(kernelFor(name, i, bind, params));
    }
    if (penalties) {
      const { recent, ring } = penaltyBuffers();
      const p = { row: i, window: penalties.window };
      kernels.push(kernelFor("append", i, () => bindAppend(device, { ids, recent, ring }, p), p));
    }
    return { penalized: penalties !== undefined, kernels };
  }

  /** Refuses a row's device sampling that the kernels cannot do as the sampler would. */
  function checkSampling(s: AheadSampling, steps: number) {
    if (
      s.temperature > 0 && (!Number.isInteger(s.topK) || s.topK < 1 || s.topK > sampleAheadTopK)
    ) {
      throw new Error(`batch: decodeAhead samples with top-k 1..${sampleAheadTopK}, not ${s.topK}`);
    }
    if (steps - 1 > MAX_AHEAD_DRAWS) {
      throw new Error(
        `batch: decodeAhead samples at most ${MAX_AHEAD_DRAWS + 1} steps in a round, not ${steps}`,
      );
    }
    if (s.temperature > 0 && s.draws.length < steps - 1) {
      throw new Error(`batch: ${steps} steps need ${steps - 1} draws, not ${s.draws.length}`);
    }
    if (s.penalties) checkPenalties(s.penalties);
  }

  function checkPenalties(p: AheadPenalties) {
    if (!Number.isInteger(p.window) || p.window < 1 || p.window > MAX_PENALTY_WINDOW) {
      throw new Error(
        `batch: decodeAhead penalizes the last 1..${MAX_PENALTY_WINDOW} tokens, not ${p.window}`,
      );
    }
    if (p.recent.length > p.window) {
      throw new Error(`batch: ${p.recent.length} recent tokens exceed the window of ${p.window}`);
    }
  }

  /** Row i's ring of recent tokens at the start of a round: its penalties' `recent`. */
  function writeRecent(i: number, p: AheadPenalties) {
    const { recent, ring } = penaltyBuffers();
    const tokens = new Uint32Array(MAX_PENALTY_WINDOW);
    tokens.set(p.recent);
    device.queue.writeBuffer(recent, i * MAX_PENALTY_WINDOW * 4, tokens);
    device.queue.writeBuffer(ring, i * 8, new Uint32Array([0, p.recent.length]));
  }

  /** Refuses a step while another runs (each awaits its readback). */
  function checkIdle() {
    if (busy) throw new Error("batch: a step is already running; await it first");
  }

  /** Refuses `count` new positions in `slot` past the context. */
  function checkRoom(slot: number, count: number) {
    const pos0 = positions[slot];
    if (pos0 + count > ctxSize) {
      throw new Error(
        `context full: ${pos0} + ${count} positions exceed the context size ${ctxSize}`,
      );
    }
  }

  async function step(rows: readonly BatchRow[]): Promise<Float32Array[]> {
    slots.checkRows(rows, maxRows);
    checkIdle();
    const tokens = rows.flatMap((r) => [...r.tokens]);
    checkIds(tokens, vocabSize);
    const table = new Uint32Array(2 * tokens.length);
    let t = 0;
    for (const r of rows) {
      checkRoom(r.slot, r.tokens.length);
      const pos0 = positions[r.slot];
      for (let i = 0; i < r.tokens.length; i++, t++) table.set([r.slot, pos0 + i], 2 * t);
    }
    for (const r of rows) ringWrote(rings[r.slot], positions[r.slot] + r.tokens.length);
    busy = true;
    try {
      const seqs = rows.length, logitBytes = vocabSize * 4;
      const stage = reader.reserve(seqs * logitBytes);
      // Row index after each sequence's last row: its logits come from the chunk holding it.
      let end = 0;
      const ends = rows.map((r) => end += r.tokens.length);
      for (let start = 0; start < tokens.length; start += chunkRows) {
        const stop = Math.min(start + chunkRows, tokens.length);
        const here = ends.flatMap((e, i) => e > start && e <= stop ? [i] : []);
        writeTokenIds(device, ids, tokens.slice(start, stop), vocabSize);
        device.queue.writeBuffer(rowTable, 0, table.subarray(2 * start, 2 * stop));
        const enc = device.createCommandEncoder({ label: "batch forward" });
        encodeForward(enc, stop - start, here.map((i) => ends[i] - start));
        here.forEach((i, k) => {
          enc.copyBufferToBuffer(logits, k * logitBytes, stage, i * logitBytes, logitBytes);
        });
        device.queue.submit([enc.finish()]);
      }
      for (const r of rows) positions[r.slot] += r.tokens.length;
      const all = new Float32Array(await reader.read(seqs * logitBytes));
      checkDevice(gpu);
      return rows.map((_, i) => all.subarray(i * vocabSize, (i + 1) * vocabSize));
    } finally {
      busy = false;
    }
  }

  /**
   * Records the layers over `n` stacked rows, then the final norm and the head over the rows
   * that end at `ends` (one per sequence: its last row), into `logits`.
   */
  function encodeForward(enc: GPUCommandEncoder, n: number, ends: readonly number[]) {
    let pass = enc.beginComputePass();
    embed.update({ n });
    embed.encode(pass);
    stack.encode(pass, n, 0);
    pass.end();
    if (ends.length === 0) return; // a chunk in the middle of a prompt
    ends.forEach((end, i) => {
      enc.copyBufferToBuffer(hidden, (end - 1) * dim * 4, last, i * dim * 4, dim * 4);
    });
    pass = enc.beginComputePass();
    headNorm.update({ n: dim, rows: ends.length, eps });
    headNorm.encode(pass);
    head.encode(pass, ends.length);
    softcap?.update({ n: ends.length * vocabSize, scale: config.logitSoftcap });
    softcap?.encode(pass);
    pass.end();
  }

  /**
   * `steps` submits of one token per row, each step's argmax written into the token ids the
   * next step embeds, and one readback of every step's logits and of the tokens fed: Deno's
   * mapAsync waits for the whole queue and then 10 ms more, whatever the work took
   * (ext/webgpu/buffer.rs), so one readback for many steps is what makes a small model's decode
   * run at the device's speed. Each step is its own submit because the row table and the
   * kernels' params are written with queue.writeBuffer, which lands before the submit.
   */
  async function decodeAhead(rows: readonly DecodeRow[], steps: number): Promise<AheadOutput> {
    slots.checkCounts(rows.map((r) => ({ slot: r.slot, count: 1 })), chunkRows);
    if (!Number.isInteger(steps) || steps < 1) {
      throw new Error(`batch: decodeAhead needs a whole number of steps ≥ 1, not ${steps}`);
    }
    checkIdle();
    for (const r of rows) {
      checkRoom(r.slot, steps);
      if (r.sampling) checkSampling(r.sampling, steps);
    }
    const seqs = rows.length, logitBytes = seqs * vocabSize * 4, idBytes = seqs * 4;
    const fedAt = steps * logitBytes; // the fed ids follow every step's logits
    busy = true;
    try {
      writeTokenIds(device, ids, rows.map((r) => r.token), vocabSize);
      const rowPicks = rows.map((r, i) => pickFor(i, r.sampling));
      rows.forEach((r, i) => {
        if (!r.sampling) return;
        const mine = Float32Array.from(r.sampling.draws.slice(0, steps - 1));
        if (mine.length > 0) device.queue.writeBuffer(draws, i * MAX_AHEAD_DRAWS * 4, mine);
        if (r.sampling.penalties) writeRecent(i, r.sampling.penalties);
      });
      if (rows.some((r) => r.sampling)) device.queue.writeBuffer(drawn, 0, new Uint32Array(seqs));
      const ends = rows.map((_, i) => i + 1);
      const stage = ahead.reserve(fedAt + steps * idBytes);
      for (let j = 0; j < steps; j++) {
        const table = new Uint32Array(2 * seqs);
        rows.forEach((r, i) => table.set([r.slot, positions[r.slot] + j], 2 * i));
        device.queue.writeBuffer(rowTable, 0, table);
        const enc = device.createCommandEncoder({ label: "batch decode ahead" });
        encodeForward(enc, seqs, ends);
        enc.copyBufferToBuffer(logits, 0, stage, j * logitBytes, logitBytes);
        if (j + 1 < steps) {
          rowPicks.forEach((pick, i) => {
            const at = i * vocabSize * 4;
            if (pick.penalized) {
              enc.copyBufferToBuffer(logits, at, penalty!.work, at, vocabSize * 4);
            }
          });
          const pass = enc.beginComputePass();
          for (const pick of rowPicks) for (const k of pick.kernels) k.encode(pass);
          pass.end();
          enc.copyBufferToBuffer(ids, 0, stage, fedAt + j * idBytes, idBytes);
        }
        device.queue.submit([enc.finish()]);
      }
      for (const r of rows) positions[r.slot] += steps;
      const bytes = await ahead.read(fedAt + (steps - 1) * idBytes);
      checkDevice(gpu);
      const all = new Float32Array(bytes, 0, fedAt / 4);
      const fed = new Uint32Array(bytes, fedAt);
      return {
        logits: Array.from({ length: steps }, (_, j) =>
          rows.map((_, i) => {
            const at = (j * seqs + i) * vocabSize;
            return all.subarray(at, at + vocabSize);
          })),
        fed: Array.from(
          { length: steps - 1 },
          (_, j) => Array.from(fed.subarray(j * seqs, (j + 1) * seqs)),
        ),
      };
    } finally {
      busy = false;
    }
  }

  return {
    maxSlots,
    ctxSize,
    vocabSize,
    maxRows,
    prefillRows: maxRows,
    acquire() {
      const slot = slots.acquire();
      if (slot !== undefined) {
        placement.kv.reserve(slot);
        if (config.recurrent) stack.clearRecurrent(slot); // a new sequence's state
        positions[slot] = 0;
        rings[slot].ringFrom = 0;
      }
      return slot;
    },
    release: (slot) => slots.release(slot),
    position(slot) {
      slots.check(slot);
      return positions[slot];
    },
    rewind(slot, position) {
      slots.check(slot);
      // Past the end, or a sliding-window ring no longer holding the window: RewindRefusedError.
      ringRewind(rings[slot], positions[slot], position);
      if (recurrentRewind(config, positions[slot], position)) stack.clearRecurrent(slot);
      positions[slot] = position;
    },
    step,
    decodeAhead: runsAhead ? decodeAhead : undefined,
    sampleAheadTopK: sampleAheadTopK > 0 ? sampleAheadTopK : undefined,
    penaltyWindowAhead: runsAhead ? MAX_PENALTY_WINDOW : undefined,
    kvBytes: () => placement.kv.bytes(),
    kvSlotBytes: placement.kv.slotBytes,
    close() {
      for (
        const x of [
          stack,
          embed,
          headNorm,
          head,
          reader,
          softcap,
          ahead,
          ...bound.values(),
        ]
      ) {
        x?.destroy();
      }
      const more = penalty ? Object.values(penalty) : [];
      for (
        const b of [ids, rowTable, last, logits, draws, drawn, ...more, ...Object.values(scratch)]
      ) {
        if (b instanceof GPUBuffer) b.destroy();
      }
    },
  };
}

/**
 * The WebGPU engine with batching: one upload of the weights behind both
 * faces; `engine.close()` frees the batch too.
 */
export async function createBatchedWebGpuEngine(
  init: WebGpuEngineInit & GpuBatchOptions,
): Promise<{ engine: WebGpuEngine; batch: GpuBatch }> {
  const model = await loadGpuModel(init);
  const engine = engineFromModel(model, init.path);
  const batch = createGpuBatch(model, init);
  const closeEngine = engine.close;
  engine.close = () => (batch.close(), closeEngine());
  return { engine, batch };
}
