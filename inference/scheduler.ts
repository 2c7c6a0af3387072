/**
 * Continuous batching: concurrent generations share one BatchEngine. Each
 * step feeds one decode token for every running sequence plus a chunk of a
 * joining sequence's prompt, so the weights are read once for all of them;
 * sequences join and leave between steps. Each request keeps its own
 * sampler, stop strings, limits and abort signal, and reads its tokens
 * through the same async iterator `generate()` gives.
 *
 * Pull, not push: a sequence sits a step out while its consumer has
 * `MAX_AHEAD` tokens it has not taken, so a slow client holds only its own slot.
 */
import type { BatchEngine, BatchRow } from "./batch.ts";
import type { GeneratedToken } from "./generate.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";
import { createWaitQueue, MAX_WAITING, QueueFullError } from "./scheduler-queue.ts";
import {
  acceptToken,
  createSequence,
  type Ending,
  resultOf,
  type ScheduledResult,
  type ScheduleOptions,
  type Sequence,
  wake,
} from "./scheduler-sequence.ts";
import { createSchedulerSlots } from "./scheduler-slots.ts";

export { MAX_WAITING, QueueFullError };
export type { ScheduledResult, ScheduleOptions };

export interface SchedulerInit {
  batch: BatchEngine;
  tokenizer: Tokenizer;
  /** Sequences running at once (default: the batch engine's slots). */
  maxConcurrent?: number;
  /** Prompt tokens per step beside the decode rows (default 64). */
  prefillChunk?: number;
  /** Requests that may wait for a slot; one more is refused with QueueFullError (MAX_WAITING). */
  maxWaiting?: number;
}

export interface Scheduler {
  generate(
    promptTokens: readonly number[],
    options?: ScheduleOptions,
  ): AsyncGenerator<GeneratedToken, ScheduledResult>;
  load(): { active: number; queued: number };
}

const MAX_AHEAD = 4;
const BREATHE_EVERY_MS = 15;

function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export function createScheduler(init: SchedulerInit): Scheduler {
  const { batch, tokenizer } = init;
  const prefillChunk = init.prefillChunk ?? 64;
  const slots = createSchedulerSlots<Sequence>(batch, init.maxConcurrent);
  const running = slots.running;
  // A queued request leaves the line at once when it is aborted; a running one at the next step.
  const waiting = createWaitQueue<Sequence>({
    maxWaiting: init.maxWaiting ?? MAX_WAITING,
    onAbort: (seq) => finish(seq, { reason: "cancelled" }),
  });
  let pumping = false, dirty = false;
  // Across pump runs: consumers restart the pump in microtasks, so only this clock
  // makes sure timers and sockets (a client's abort) get a turn.
  let lastBreath = performance.now();

  /** Ends a sequence: frees its slot or its place in line, sets its result, wakes its reader. */
  function finish(seq: Sequence, end: Ending) {
    if (seq.slot >= 0) slots.release(seq);
    else waiting.leave(seq);
    seq.result = resultOf(seq, end, performance.now());
    wake(seq);
  }

  function accept(seq: Sequence, logits: Float32Array) {
    const end = acceptToken(seq, logits, tokenizer);
    if (end) finish(seq, end);
  }

  /** One batched step; false when no sequence can move now. */
  async function stepOnce(): Promise<boolean> {
    for (const seq of [...running]) {
      if (seq.gone || seq.signal?.aborted) finish(seq, { reason: "cancelled" });
    }
    for (const seq of slots.admit(waiting)) seq.admittedAt = performance.now();
    const rows: BatchRow[] = [], stepped: Sequence[] = [];
    for (const seq of running) {
      if (seq.next !== undefined && seq.events.length < MAX_AHEAD) {
        rows.push({ slot: seq.slot, tokens: [seq.next] });
        stepped.push(seq);
      }
    }
    let budget = Math.min(prefillChunk, batch.maxRows - rows.length);
    for (const seq of running) {
      if (seq.fed === seq.prompt.length || budget <= 0) continue;
      const chunk = seq.prompt.slice(seq.fed, seq.fed + budget);
      rows.push({ slot: seq.slot, tokens: chunk });
      stepped.push(seq);
      budget -= chunk.length;
    }
    if (rows.length === 0) return false;
    let logits: Float32Array[];
    try {
      logits = await batch.step(rows);
    } catch (err) {
      for (const seq of stepped) {
        seq.error = err;
        finish(seq, { reason: "cancelled" });
      }
      return true;
    }
    stepped.forEach((seq, i) => {
      if (seq.next !== undefined) {
        seq.next = undefined;
        return accept(seq, logits[i]);
      }
      seq.fed += rows[i].tokens.length;
      if (seq.fed < seq.prompt.length) return;
      seq.prefilledAt = performance.now();
      accept(seq, logits[i]);
    });
    return true;
  }

  async function pump() {
    try {
      while (dirty) {
        dirty = false;
        do {
          if (performance.now() - lastBreath > BREATHE_EVERY_MS) {
            await breathe(); // timers and sockets (a client's disconnect) get their turn
            lastBreath = performance.now();
          }
        } while (await stepOnce());
      }
    } finally {
      pumping = false;
    }
  }

  function kick() {
    dirty = true;
    if (pumping) return;
    pumping = true;
    void pump();
  }

  async function* generate(
    promptTokens: readonly number[],
    options: ScheduleOptions = {},
  ): AsyncGenerator<GeneratedToken, ScheduledResult> {
    if (promptTokens.length === 0) throw new Error("the prompt has no tokens");
    if (promptTokens.length >= batch.ctxSize) {
      throw new Error(
        `the prompt has ${promptTokens.length} tokens; the context holds ${batch.ctxSize}`,
      );
    }
    const room = batch.ctxSize - promptTokens.length;
    const maxTokens = Math.min(options.maxTokens ?? room, room);
    const make = () => createSequence(promptTokens, options, maxTokens, tokenizer);
    const free = slots.free();
    if (maxTokens <= 0) {
      const seq = waiting.join(make, free);
      finish(seq, { reason: "length" });
      return seq.result!;
    }
    const signal = options.signal;
    const seq = waiting.join(make, free, signal);
    // A running request is ended by the next step, which the abort starts.
    const onAbort = () => kick();
    signal?.addEventListener("abort", onAbort, { once: true });
    kick();
    try {
      while (true) {
        if (seq.events.length > 0) {
          const event = seq.events.shift()!;
          kick(); // room in the buffer: the sequence may step again
          yield event;
          continue;
        }
        if (seq.error) throw seq.error;
        if (seq.result) return seq.result;
        await new Promise<void>((resolve) => seq.wake = resolve);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!seq.result) {
        seq.gone = true;
        if (seq.slot < 0) finish(seq, { reason: "cancelled" });
        kick();
      }
    }
  }

  return {
    generate,
    load: () => ({ active: running.length, queued: waiting.length }),
  };
}
