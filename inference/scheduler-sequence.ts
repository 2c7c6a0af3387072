/**
 * One request in the scheduler: its prompt and how much of it is in the cache, its own sampler,
 * stop strings, decoder and limits, the tokens its reader has not taken yet, and its timings.
 * Plain state and the functions that move it; the wait queue, the slot table and the stepping loop
 * decide when.
 */
import type { GeneratedToken, GenerateOptions, GenerationResult } from "./generate.ts";
import type { ConstraintState } from "./grammar/constraint.ts";
import { createSampler, type SampledToken, type Sampler, type SamplerOptions } from "./sampler.ts";
import { createStopMatcher } from "./stop-strings.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";

export interface ScheduleOptions extends Omit<GenerateOptions, "session" | "logprobs"> {
  /**
   * Continue an answer begun elsewhere (a failed node's): its tokens so far are fed after the
   * prompt with no sampling and come out again as tokens (text, stop strings, grammar, limits all
   * as if sampled here), then sampling goes on from `rngState`, the RNG state after the last.
   */
  resume?: { tokens: readonly number[]; rngState?: readonly number[] };
  /** Each token carries the sampler's RNG state after it (`GeneratedToken.rng`). */
  reportRng?: boolean;
  /**
   * Who asks (a member's pubkey; the node's own key for its own requests): the sequence's cache
   * stays for this key's later prompts that share its start (prefix-cache.ts), and only this
   * key's cached prefixes serve it. Left out: nothing is reused or kept.
   */
  cacheKey?: string;
}

export interface ScheduledResult extends GenerationResult {
  queuedMs: number; // waiting for a slot
  admitted: boolean; // false: cancelled while still queued
  /** Prompt tokens taken from a cached prefix, not prefilled (llama.cpp's `cache_n`). */
  cachedTokens: number;
}

export type FinishReason = GenerationResult["finishReason"];

/** Why a sequence ends; `stoppedByString`: a stop string matched, so nothing is held back. */
export interface Ending {
  reason: FinishReason;
  stoppedByString?: boolean;
}

export interface Sequence {
  /** What the engine reads before sampling: the prompt, then any resumed tokens. */
  prompt: readonly number[];
  /** Resumed tokens at the end of `prompt` (ScheduleOptions.resume): not prompt in the usage. */
  resumed: number;
  reportRng: boolean;
  fed: number; // prompt tokens already in the cache
  /** The requester and `prompt`, when its cache may be reused and kept (options.cacheKey). */
  prefix?: { owner: string; tokens: readonly number[] };
  /** Prompt tokens a cached prefix gave on admission (0 on a clean slot). */
  cached: number;
  next?: number; // sampled token to feed in the next step
  slot: number; // the engine slot; -1 while it waits
  sampler: Sampler;
  /** The grammar's hold on this sequence's tokens (options.constraint), if any. */
  constraint?: ConstraintState;
  /** The sampler's options with its seed resolved: what an engine that samples gets. */
  samplerOptions: SamplerOptions;
  stops: ReturnType<typeof createStopMatcher>;
  decoder: ReturnType<Tokenizer["createDecoder"]>;
  history: number[];
  maxTokens: number;
  completion: number;
  signal?: AbortSignal;
  gone: boolean; // the consumer stopped reading
  events: GeneratedToken[]; // emitted, not yet taken by the reader
  wake?: () => void; // the reader, waiting for an event or the end
  queuedAt: number;
  admittedAt: number;
  prefilledAt: number;
  result?: ScheduledResult;
  error?: unknown;
}

/**
 * A sequence for `prompt`, not yet in line; `maxTokens` already fits the context. `constraint`:
 * the state of options.constraint's grammar for it (the scheduler makes it from its tokenizer).
 */
export function createSequence(
  prompt: readonly number[],
  options: ScheduleOptions,
  maxTokens: number,
  tokenizer: Pick<Tokenizer, "createDecoder">,
  constraint?: ConstraintState,
): Sequence {
  const {
    maxTokens: _wanted,
    stop,
    signal,
    constraint: _grammar,
    resume,
    reportRng,
    cacheKey,
    ...samplerOptions
  } = options;
  // The seed is drawn here once (none given: a random one), so the request could be replayed.
  const sampler = createSampler({ ...samplerOptions, rngState: resume?.rngState });
  const resumed = resume?.tokens ?? [];
  const read = [...prompt, ...resumed];
  return {
    prompt: read,
    prefix: cacheKey === undefined ? undefined : { owner: cacheKey, tokens: read },
    cached: 0,
    resumed: resumed.length,
    reportRng: reportRng === true,
    fed: 0,
    slot: -1,
    sampler,
    constraint,
    samplerOptions: { ...sampler.options, seed: sampler.seed },
    stops: createStopMatcher(stop ?? []),
    decoder: tokenizer.createDecoder(),
    history: [...prompt], // resumed tokens join it as they are replayed
    maxTokens,
    completion: 0,
    signal,
    gone: false,
    events: [],
    queuedAt: performance.now(),
    admittedAt: 0,
    prefilledAt: 0,
  };
}

/**
 * Takes the resumed tokens as if sampled (ScheduleOptions.resume): the reader gets them again,
 * and the decoder, stop strings, grammar, penalties' history and token count stand where the
 * first node's did. Says why the answer ends if it already ended there; the engine still has to
 * read them (they end `prompt`) before the next pick.
 */
export function replayResumed(
  seq: Sequence,
  tokenizer: Pick<Tokenizer, "isEndOfGeneration">,
): Ending | undefined {
  const tokens = seq.prompt.slice(seq.prompt.length - seq.resumed);
  for (const id of tokens) {
    const end = acceptPick(seq, { id, logprob: 0 }, tokenizer, false);
    if (end) return end;
  }
  seq.next = undefined; // the engine's prefill of `prompt` gives the next pick
  return undefined;
}

/** Wakes the sequence's reader, if it waits. */
export function wake(seq: Sequence): void {
  const resolve = seq.wake;
  seq.wake = undefined;
  resolve?.();
}

/**
 * Samples `seq`'s next token from its logits (masked first by its grammar, which may throw
 * GrammarError): emits it to the reader, or says why it ends.
 */
export function acceptToken(
  seq: Sequence,
  logits: Float32Array,
  tokenizer: Pick<Tokenizer, "isEndOfGeneration">,
): Ending | undefined {
  seq.constraint?.mask(logits, seq.maxTokens - seq.completion);
  return acceptPick(seq, seq.sampler.sample(logits, seq.history), tokenizer);
}

/** A grammar's answer ends: "length" when the budget closed it early. */
function constrainedEnd(c: ConstraintState): Ending {
  return { reason: c.closedEarly() ? "length" : "stop" };
}

/**
 * Takes `pick` as `seq`'s next token (its own sampler's, or an engine's that samples): emits it
 * to the reader, or says why it ends.
 */
export function acceptPick(
  seq: Sequence,
  pick: SampledToken,
  tokenizer: Pick<Tokenizer, "isEndOfGeneration">,
  sampled = true,
): Ending | undefined {
  seq.completion++;
  seq.history.push(pick.id);
  const c = seq.constraint;
  if (tokenizer.isEndOfGeneration(pick.id)) return c ? constrainedEnd(c) : { reason: "stop" };
  c?.accept(pick.id);
  const { emit, stopped } = seq.stops.push(seq.decoder.push(pick.id));
  const event: GeneratedToken = {
    id: pick.id,
    text: emit,
    logprob: pick.logprob,
    topLogprobs: pick.topLogprobs,
  };
  if (seq.reportRng && sampled) event.rng = seq.sampler.rngState();
  seq.events.push(event);
  wake(seq);
  if (stopped) return { reason: "stop", stoppedByString: true };
  if (c?.mustEnd()) return constrainedEnd(c);
  if (seq.completion >= seq.maxTokens) return { reason: "length" };
  seq.next = pick.id;
  return undefined;
}

/** The result of `seq` ending `now` (performance.now()); it held a slot if its slot is set. */
export function resultOf(seq: Sequence, end: Ending, now: number): ScheduledResult {
  const admitted = seq.slot >= 0;
  const tail = end.stoppedByString
    ? ""
    : seq.stops.push(seq.decoder.flush()).emit + seq.stops.flush();
  const prefilledAt = seq.prefilledAt || now;
  const prefillMs = admitted ? prefilledAt - seq.admittedAt : 0;
  const decodeMs = admitted ? now - prefilledAt : 0;
  const decoded = Math.max(seq.completion - 1, 0);
  const cached = admitted ? seq.cached : 0;
  const prefilled = seq.prompt.length - cached;
  return {
    finishReason: end.reason,
    tail,
    promptTokens: seq.prompt.length - seq.resumed,
    completionTokens: seq.completion,
    prefillMs,
    decodeMs,
    // Over the tokens prefilled here: a cached prefix took no time.
    prefillTokensPerSecond: prefillMs > 0 ? prefilled / (prefillMs / 1000) : 0,
    decodeTokensPerSecond: decoded > 0 ? decoded / (decodeMs / 1000) : 0,
    queuedMs: (admitted ? seq.admittedAt : now) - seq.queuedAt,
    admitted,
    cachedTokens: cached,
  };
}
