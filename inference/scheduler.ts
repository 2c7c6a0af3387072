/**
 * Continuous batching: concurrent generations share one BatchEngine. Each
 * step feeds one decode token for every running sequence plus a chunk of a
 * joining sequence's prompt, so the weights are read once for all of them;
 * sequences join and leave between steps. Each request keeps its own
 * sampler, stop strings, limits and abort signal, and reads its tokens
 * through the same async iterator `generate()` gives.
 *
 * Its parts: the wait queue (scheduler-queue.ts), the slot table of running
 * sequences (scheduler-slots.ts), the stepping loop (scheduler-loop.ts) and
 * each request's state (scheduler-sequence.ts). Here: a request's way in and
 * its reader's side, and the one place a sequence ends.
 */
import type { BatchEngine, StepOutput } from "./batch.ts";
import type { GeneratedToken } from "./generate.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";
import { createConstraint } from "./grammar/constraint.ts";
import { createWaitQueue, MAX_WAITING, QueueFullError } from "./scheduler-queue.ts";
import { createStepLoop } from "./scheduler-loop.ts";
import {
  createSequence,
  type Ending,
  replayResumed,
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
  /** Gives logits (the scheduler samples) or, `samples: true`, its own picks. */
  batch: BatchEngine<StepOutput>;
  tokenizer: Tokenizer;
  /** Sequences running at once (default: the batch engine's slots). */
  maxConcurrent?: number;
  /** Prompt tokens per step beside the decode rows (default: the engine's prefillRows, or 64). */
  prefillChunk?: number;
  /** Requests that may wait for a slot; one more is refused with QueueFullError (MAX_WAITING). */
  maxWaiting?: number;
  /**
   * Ended sequences keep their slot's cache for their requester's next prompt
   * (ScheduleOptions.cacheKey; prefix-cache.ts); default on, except for an engine that samples
   * (a split model, whose caches live on other nodes and cannot rewind).
   */
  promptReuse?: boolean;
}

export interface Scheduler {
  generate(
    promptTokens: readonly number[],
    options?: ScheduleOptions,
  ): AsyncGenerator<GeneratedToken, ScheduledResult>;
  load(): { active: number; queued: number };
}

/**
 * Prompt tokens a step takes beside the decode rows: short steps, so that running sequences get
 * their next token soon while a long prompt comes in (and MAX_STEP_MS cuts slow engines' less).
 */
const PREFILL_CHUNK = 64;

export function createScheduler(init: SchedulerInit): Scheduler {
  const { batch, tokenizer } = init;
  const slots = createSchedulerSlots<Sequence>(batch, init.maxConcurrent, {
    reuse: init.promptReuse ?? !batch.samples,
  });
  // A queued request leaves the line at once when it is aborted; a running one at the next step.
  const waiting = createWaitQueue<Sequence>({
    maxWaiting: init.maxWaiting ?? MAX_WAITING,
    onAbort: (seq) => finish(seq, { reason: "cancelled" }),
  });
  const prefillChunk = init.prefillChunk ?? batch.prefillRows ?? PREFILL_CHUNK;
  const loop = createStepLoop({ prefillChunk }, {
    batch,
    tokenizer,
    queue: waiting,
    slots,
    finish,
  });
  const { kick } = loop;

  /**
   * Ends a sequence: frees its slot (its cache kept for its requester, unless a step failed and
   * left it unknown) or its place in line, sets its result, wakes its reader.
   */
  function finish(seq: Sequence, end: Ending) {
    const keep = seq.prefix && !seq.error
      ? { owner: seq.prefix.owner, tokens: seq.history }
      : undefined;
    if (seq.slot >= 0) slots.release(seq, keep);
    else waiting.leave(seq);
    seq.result = resultOf(seq, end, performance.now());
    wake(seq);
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
    const resumed = options.resume?.tokens.length ?? 0;
    if (resumed > 0 && batch.samples) {
      throw new Error("this engine samples on its own, so it cannot continue another's answer");
    }
    if (options.constraint && batch.samples) {
      throw new Error(
        "this engine samples on its own (a split model's last stage), so it cannot follow a " +
          "grammar constraint yet",
      );
    }
    const room = batch.ctxSize - promptTokens.length;
    const maxTokens = Math.min(options.maxTokens ?? room, room);
    const make = () =>
      createSequence(
        promptTokens,
        options,
        maxTokens,
        tokenizer,
        options.constraint && createConstraint(options.constraint, tokenizer),
      );
    const free = slots.free();
    if (maxTokens <= 0) {
      const seq = waiting.join(make, free);
      finish(seq, { reason: "length" });
      return seq.result!;
    }
    const signal = options.signal;
    const seq = waiting.join(make, free, signal);
    // A continued answer: its tokens so far come out again first (its prompt ends with them).
    const ended = seq.resumed > 0 ? replayResumed(seq, tokenizer) : undefined;
    if (ended) finish(seq, ended);
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
    load: () => ({ active: slots.running.length, queued: waiting.length }),
  };
}
