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
import type { GeneratedToken, GenerateOptions, GenerationResult } from "./generate.ts";
import { createSampler, type Sampler } from "./sampler.ts";
import { createStopMatcher } from "./stop-strings.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";
import { createWaitQueue, MAX_WAITING, QueueFullError } from "./scheduler-queue.ts";
import { createSchedulerSlots } from "./scheduler-slots.ts";

export { MAX_WAITING, QueueFullError };

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

export type ScheduleOptions = Omit<GenerateOptions, "session" | "logprobs">;

export interface ScheduledResult extends GenerationResult {
  queuedMs: number; // waiting for a slot
  admitted: boolean; // false: cancelled while still queued
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

interface Seq {
  prompt: readonly number[];
  fed: number; // prompt tokens already in the cache
  next?: number; // sampled token to feed in the next step
  slot: number;
  sampler: Sampler;
  stops: ReturnType<typeof createStopMatcher>;
  decoder: ReturnType<Tokenizer["createDecoder"]>;
  history: number[];
  maxTokens: number;
  completion: number;
  signal?: AbortSignal;
  gone: boolean; // the consumer stopped reading
  events: GeneratedToken[];
  wake?: () => void;
  queuedAt: number;
  admittedAt: number;
  prefilledAt: number;
  result?: ScheduledResult;
  error?: unknown;
}

function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export function createScheduler(init: SchedulerInit): Scheduler {
  const { batch, tokenizer } = init;
  const prefillChunk = init.prefillChunk ?? 64;
  const slots = createSchedulerSlots<Seq>(batch, init.maxConcurrent);
  const running = slots.running;
  // A queued request leaves the line at once when it is aborted; a running one at the next step.
  const waiting = createWaitQueue<Seq>({
    maxWaiting: init.maxWaiting ?? MAX_WAITING,
    onAbort: (seq) => finish(seq, "cancelled"),
  });
  let pumping = false, dirty = false;
  // Across pump runs: consumers restart the pump in microtasks, so only this clock
  // makes sure timers and sockets (a client's abort) get a turn.
  let lastBreath = performance.now();

  function notify(seq: Seq) {
    const wake = seq.wake;
    seq.wake = undefined;
    wake?.();
  }

  function finish(seq: Seq, reason: GenerationResult["finishReason"], stoppedByString = false) {
    const now = performance.now();
    const admitted = seq.slot >= 0;
    if (admitted) {
      slots.release(seq);
    } else {
      waiting.leave(seq);
    }
    const tail = stoppedByString
      ? ""
      : seq.stops.push(seq.decoder.flush()).emit + seq.stops.flush();
    const prefilledAt = seq.prefilledAt || now;
    const prefillMs = admitted ? prefilledAt - seq.admittedAt : 0;
    const decodeMs = admitted ? now - prefilledAt : 0;
    const decoded = Math.max(seq.completion - 1, 0);
    seq.result = {
      finishReason: reason,
      tail,
      promptTokens: seq.prompt.length,
      completionTokens: seq.completion,
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? seq.prompt.length / (prefillMs / 1000) : 0,
      decodeTokensPerSecond: decoded > 0 ? decoded / (decodeMs / 1000) : 0,
      queuedMs: (admitted ? seq.admittedAt : now) - seq.queuedAt,
      admitted,
    };
    notify(seq);
  }

  /** Takes the sampled token for `seq`: emits it, or ends the sequence. */
  function accept(seq: Seq, logits: Float32Array) {
    const pick = seq.sampler.sample(logits, seq.history);
    seq.completion++;
    seq.history.push(pick.id);
    if (tokenizer.isEndOfGeneration(pick.id)) return finish(seq, "stop");
    const { emit, stopped } = seq.stops.push(seq.decoder.push(pick.id));
    seq.events.push({
      id: pick.id,
      text: emit,
      logprob: pick.logprob,
      topLogprobs: pick.topLogprobs,
    });
    notify(seq);
    if (stopped) return finish(seq, "stop", true);
    if (seq.completion >= seq.maxTokens) return finish(seq, "length");
    seq.next = pick.id;
  }

  /** One batched step; false when no sequence can move now. */
  async function stepOnce(): Promise<boolean> {
    for (const seq of [...running]) {
      if (seq.gone || seq.signal?.aborted) finish(seq, "cancelled");
    }
    for (const seq of slots.admit(waiting)) seq.admittedAt = performance.now();
    const rows: BatchRow[] = [], stepped: Seq[] = [];
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
        finish(seq, "cancelled");
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
    const { maxTokens: wanted, stop, signal, ...samplerOptions } = options;
    const room = batch.ctxSize - promptTokens.length;
    const maxTokens = Math.min(wanted ?? room, room);
    const make = (): Seq => ({
      prompt: [...promptTokens],
      fed: 0,
      slot: -1,
      sampler: createSampler(samplerOptions),
      stops: createStopMatcher(stop ?? []),
      decoder: tokenizer.createDecoder(),
      history: [...promptTokens],
      maxTokens,
      completion: 0,
      signal,
      gone: false,
      events: [],
      queuedAt: performance.now(),
      admittedAt: 0,
      prefilledAt: 0,
    });
    const free = slots.free();
    if (maxTokens <= 0) {
      const seq = waiting.join(make, free);
      finish(seq, "length");
      return seq.result!;
    }
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
        if (seq.slot < 0) finish(seq, "cancelled");
        kick();
      }
    }
  }

  return {
    generate,
    load: () => ({ active: running.length, queued: waiting.length }),
  };
}
