/**
 * The generation loop shared by every front end: prefill the prompt, then
 * sample, stream and stop.
 */
import type { Engine, Session } from "./engine.ts";
import { createConstraint } from "./grammar/constraint.ts";
import type { Grammar } from "./grammar/grammar.ts";
import { createSampler, type SamplerOptions } from "./sampler.ts";
import { createStopMatcher } from "./stop-strings.ts";

export interface GenerateOptions extends Partial<SamplerOptions> {
  maxTokens?: number; // default: until the context is full
  stop?: string[];
  signal?: AbortSignal;
  session?: Session; // reuse a session (its cache is rewound to 0)
  /** The caller reports each token's logprob: keeps greedy decoding off the device fast path. */
  logprobs?: boolean;
  /**
   * Only text of this grammar: the logits are masked before each pick, the answer always
   * completes within maxTokens (finish "length" when the budget closed it early), and the
   * generation stops where the grammar allows nothing more.
   */
  constraint?: Grammar;
}

export interface GeneratedToken {
  id: number;
  text: string; // the text this token completes; may be "" while a UTF-8 sequence or a possible stop string is held back
  logprob: number;
  topLogprobs?: { id: number; logprob: number }[];
  /** The sampler's RNG state after this token, when the schedule asked (`reportRng`). */
  rng?: number[];
}

export interface GenerationTimings {
  promptTokens: number;
  completionTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export interface GenerationResult extends GenerationTimings {
  finishReason: "stop" | "length" | "cancelled";
  tail: string; // text held back at the end (a partial stop string that never completed)
}

const YIELD_EVERY_MS = 15;

/** Lets timers and sockets run (a client's disconnect, say) during a long generation. */
function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export async function* generate(
  engine: Engine,
  promptTokens: readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, GenerationResult> {
  if (promptTokens.length === 0) throw new Error("the prompt has no tokens");
  if (promptTokens.length >= engine.ctxSize) {
    throw new Error(
      `the prompt has ${promptTokens.length} tokens; the context holds ${engine.ctxSize}`,
    );
  }
  const {
    maxTokens: wanted,
    stop,
    signal,
    session: given,
    logprobs,
    constraint: grammar,
    ...samplerOptions
  } = options;
  const constraint = grammar && createConstraint(grammar, engine.tokenizer);
  const session = given ?? engine.createSession();
  if (session.position > 0) session.rewind(0);
  const sampler = createSampler(samplerOptions);
  const stops = createStopMatcher(stop ?? []);
  const decoder = engine.tokenizer.createDecoder();
  const room = engine.ctxSize - promptTokens.length;
  const maxTokens = Math.min(wanted ?? room, room);
  const history = [...promptTokens];
  // Plain greedy on a device engine: the argmax is picked there and 4 bytes come back
  // (the token's logprob is then unknown: NaN). A grammar needs the logits on the host.
  const o = sampler.options;
  const onDevice = session.evaluateGreedy && !logprobs && !constraint && o.temperature <= 0 &&
    o.repeatPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0 &&
    o.topLogprobs === 0 && o.logitBias === undefined;
  // Where the device chains its picks itself (evaluateGreedyStream), each step is queued before
  // the host has read the previous pick, hiding the readback's round trip; a stop string or
  // the end of generation costs at most a few steps run ahead, which the stream rewinds.
  const stream = onDevice && session.evaluateGreedyStream
    ? session.evaluateGreedyStream(promptTokens, Math.max(1, maxTokens))
    : undefined;
  const nextPick = async (picks: AsyncGenerator<number, void>) => {
    const r = await picks.next();
    if (r.done) throw new Error("the device's greedy stream ended before its last pick");
    return r.value;
  };
  const evaluate = (tokens: readonly number[]): Promise<Float32Array | number> | Float32Array =>
    stream
      ? nextPick(stream)
      : onDevice
      ? session.evaluateGreedy!(tokens)
      : session.evaluateAsync?.(tokens) ?? session.evaluate(tokens);

  try {
    return yield* loop();
  } finally {
    await stream?.return();
  }

  async function* loop(): AsyncGenerator<GeneratedToken, GenerationResult> {
    const t0 = performance.now();
    let logits = await evaluate(promptTokens);
    const prefillMs = performance.now() - t0;
    const t1 = performance.now();
    let lastBreath = t1;
    let completionTokens = 0;
    let finishReason: GenerationResult["finishReason"] = "length";
    let stoppedByString = false;

    while (completionTokens < maxTokens) {
      if (signal?.aborted) {
        finishReason = "cancelled";
        break;
      }
      if (typeof logits !== "number") constraint?.mask(logits, maxTokens - completionTokens);
      const pick = typeof logits === "number"
        ? { id: logits, logprob: NaN, topLogprobs: undefined }
        : sampler.sample(logits, history);
      completionTokens++;
      history.push(pick.id);
      if (engine.tokenizer.isEndOfGeneration(pick.id)) {
        finishReason = constraint?.closedEarly() ? "length" : "stop";
        break;
      }
      constraint?.accept(pick.id);
      const { emit, stopped } = stops.push(decoder.push(pick.id));
      yield { id: pick.id, text: emit, logprob: pick.logprob, topLogprobs: pick.topLogprobs };
      if (stopped) {
        finishReason = "stop";
        stoppedByString = true;
        break;
      }
      if (constraint?.mustEnd()) {
        finishReason = constraint.closedEarly() ? "length" : "stop";
        break;
      }
      if (completionTokens >= maxTokens) break;
      logits = await evaluate([pick.id]);
      if (performance.now() - lastBreath > YIELD_EVERY_MS) {
        await breathe();
        lastBreath = performance.now();
      }
    }
    const tail = stoppedByString ? "" : stops.push(decoder.flush()).emit + stops.flush();
    const decodeMs = performance.now() - t1;
    const decoded = Math.max(completionTokens - 1, 0); // the first token came from the prefill
    return {
      finishReason,
      tail,
      promptTokens: promptTokens.length,
      completionTokens,
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: promptTokens.length / (prefillMs / 1000),
      decodeTokensPerSecond: decoded > 0 ? decoded / (decodeMs / 1000) : 0,
    };
  }
}
