/**
 * What the chat and completions routes share: pick the model, start the
 * service call, wait for its first event (so a refusal still gets its HTTP
 * status), and tie the call to the client: the client's signal, or the
 * stream being dropped, aborts it.
 */
import {
  type DoneEvent,
  type InferenceService,
  type InferEvent,
  inferNeeds,
  type InferRequest,
  ServiceError,
  serviceErrorOf,
  type TokenEvent,
  type ToolCallEvent,
} from "../mesh/mod.ts";
import { errorBody, HttpError, serviceHttpError, toHttpError } from "./http-error.ts";
import { resolveModel } from "./model-choice.ts";
import { SSE_DONE, sseEvent } from "./sse.ts";
import type { InferenceRecord, Metrics } from "./metrics.ts";

/** What a run yields: its tokens and tool calls, then one done event. */
export type AnswerEvent = TokenEvent | ToolCallEvent | DoneEvent;

export interface InferRun {
  model: string;
  /** Token and tool_call events, then one done event; a ServiceError thrown mid-way ends it. */
  events: AsyncGenerator<AnswerEvent, void>;
  /** Stops the generation (the client went away). */
  cancel(): void;
  /** Whether the run ended without `done` because it was cancelled. */
  cancelled(): boolean;
}

export interface InferRunDeps {
  service: InferenceService;
  metrics: Metrics;
}

export async function startInfer(
  deps: InferRunDeps,
  request: InferRequest,
  clientSignal: AbortSignal,
  endpoint: InferenceRecord["endpoint"],
): Promise<InferRun> {
  const started = performance.now();
  // One signal for both ways a client leaves. The listener on the client's
  // signal goes once the run ends: Deno.serve aborts that signal after every
  // successful response too, and then no one should be listening.
  const controller = new AbortController();
  const signal = controller.signal;
  const onClientAbort = () => controller.abort();
  const detach = () => clientSignal.removeEventListener("abort", onClientAbort);
  if (clientSignal.aborted) controller.abort();
  else clientSignal.addEventListener("abort", onClientAbort, { once: true });
  const model = await resolveModel(deps.service, request.model, () => inferNeeds(request));
  const req = { ...request, model };
  let recorded = false; // one record per request, whichever way it ends
  const record = (outcome: InferenceRecord["outcome"], extra: Partial<InferenceRecord> = {}) => {
    if (recorded) return;
    recorded = true;
    deps.metrics.inference({
      endpoint,
      modelId: model,
      outcome,
      durationSeconds: (performance.now() - started) / 1000,
      promptTokens: 0,
      completionTokens: 0,
      ...extra,
    });
  };

  const it = deps.service.infer(req, signal)[Symbol.asyncIterator]();
  let first: IteratorResult<InferEvent>;
  try {
    first = await it.next();
  } catch (err) {
    detach();
    record(signal.aborted ? "cancelled" : "error");
    throw err instanceof ServiceError ? serviceHttpError(err) : err;
  }
  if (first.done || first.value.type === "error") detach();
  if (first.done) {
    record("cancelled");
    throw signal.aborted
      ? new HttpError(499, "the client closed the request", "invalid_request_error", "cancelled")
      : serviceHttpError(new ServiceError("unavailable", "the model ended the request unanswered"));
  }
  if (first.value.type === "error") {
    record("error");
    throw serviceHttpError(serviceErrorOf(first.value));
  }

  let sawDone = false;
  async function* events(head: AnswerEvent): AsyncGenerator<AnswerEvent> {
    let ttftSeconds: number | undefined;
    let completionTokens = 0;
    let event: InferEvent = head;
    try {
      while (true) {
        if (event.type === "error") throw serviceErrorOf(event);
        if (event.type === "token") {
          ttftSeconds ??= (performance.now() - started) / 1000;
          completionTokens++;
        } else if (event.type === "done") {
          sawDone = true;
          record("ok", {
            ttftSeconds,
            promptTokens: event.usage.prompt_tokens,
            cachedTokens: event.timings.cached_n ?? 0,
            completionTokens: event.usage.completion_tokens,
          });
        }
        yield event;
        if (sawDone) return;
        const step = await it.next();
        if (step.done) {
          if (signal.aborted) return;
          throw new ServiceError("unavailable", "the serving node ended the answer unfinished");
        }
        event = step.value;
      }
    } catch (err) {
      record("error", { ttftSeconds, completionTokens });
      throw err;
    } finally {
      if (!sawDone) {
        controller.abort();
        record("cancelled", { ttftSeconds, completionTokens });
      }
      detach();
      await it.return?.(); // lets the service clean up, whichever way this ended
    }
  }

  return {
    model: req.model,
    events: events(first.value),
    cancel: () => controller.abort(),
    cancelled: () => !sawDone && signal.aborted,
  };
}

/** The usage object OpenAI puts in every answer. */
export function usageOf(done: DoneEvent) {
  const { prompt_tokens, completion_tokens } = done.usage;
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

export function completionId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

export const unixSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Runs `run` to its end for a whole (unstreamed) answer, handing each token and tool call to
 * `onEvent`; its done event, or a 499 when the client went away first.
 */
export async function collectRun(
  run: InferRun,
  onEvent: (event: TokenEvent | ToolCallEvent) => void,
): Promise<DoneEvent> {
  let done: DoneEvent | undefined;
  for await (const event of run.events) {
    if (event.type === "done") done = event;
    else onEvent(event);
  }
  if (!done) throw new HttpError(499, "the client closed the request", "cancelled", "cancelled");
  return done;
}

/**
 * The SSE frames of a streamed answer: `frames` turns each event into its
 * chunks; a failure mid-way becomes an error event, and a stream that was not
 * cancelled ends with [DONE].
 */
export async function* streamRun(
  run: InferRun,
  frames: (event: AnswerEvent) => Iterable<string>,
): AsyncGenerator<string> {
  try {
    for await (const event of run.events) yield* frames(event);
  } catch (err) {
    yield sseEvent(errorBody(toHttpError(err)));
    return;
  }
  if (!run.cancelled()) yield SSE_DONE;
}

/**
 * OpenAI's `n`: `n` runs of one request at once, each its own generation (`seed + i` when the
 * request has a seed, so choices differ yet replay). All go to the same model; a refusal of any
 * is the answer, and the others are cancelled.
 */
export async function startInfers(
  deps: InferRunDeps,
  request: InferRequest,
  n: number,
  clientSignal: AbortSignal,
  endpoint: InferenceRecord["endpoint"],
): Promise<InferRun[]> {
  if (n === 1) return [await startInfer(deps, request, clientSignal, endpoint)];
  const model = await resolveModel(deps.service, request.model, () => inferNeeds(request));
  const seed = request.params.seed;
  const started = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => {
      const params = seed === undefined ? request.params : { ...request.params, seed: seed + i };
      return startInfer(deps, { ...request, model, params }, clientSignal, endpoint);
    }),
  );
  const refused = started.find((r) => r.status === "rejected");
  if (refused === undefined) {
    return started.map((r) => (r as PromiseFulfilledResult<InferRun>).value);
  }
  for (const r of started) if (r.status === "fulfilled") discard(r.value);
  throw refused.reason;
}

/** Cancels a run and reads it to its end, so its service call closes and its metrics count. */
export function discard(run: InferRun): void {
  run.cancel();
  (async () => {
    try {
      for await (const _ of run.events);
    } catch {
      // Cancelled: how it ended matters to no one.
    }
  })();
}

/** `collectRun` over several runs at once, in order; a failure of one cancels the others. */
export async function collectRuns(
  runs: InferRun[],
  onEvent: (event: TokenEvent | ToolCallEvent, index: number) => void,
): Promise<DoneEvent[]> {
  try {
    return await Promise.all(runs.map((run, i) => collectRun(run, (event) => onEvent(event, i))));
  } catch (err) {
    runs.forEach(discard);
    throw err;
  }
}

/** OpenAI's usage of `n` choices: the prompt once (the same for each), the completions summed. */
export function usageOfAll(dones: DoneEvent[]) {
  const prompt_tokens = dones[0].usage.prompt_tokens;
  const completion_tokens = dones.reduce((sum, d) => sum + d.usage.completion_tokens, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

/** The events of several runs as they come, each with its run's index. */
async function* mergeRuns(
  runs: InferRun[],
): AsyncGenerator<{ index: number; event: AnswerEvent }> {
  type Step = { index: number; step?: IteratorResult<AnswerEvent>; error?: unknown };
  const pending = new Map<number, Promise<Step>>();
  const ended = new Set<number>();
  const pull = (index: number) =>
    pending.set(
      index,
      runs[index].events.next().then((step) => ({ index, step }), (error) => ({ index, error })),
    );
  runs.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { index, step, error } = await Promise.race(pending.values());
      pending.delete(index);
      if (error !== undefined || step!.done) {
        ended.add(index);
        if (error !== undefined) throw error;
        continue;
      }
      yield { index, event: step!.value };
      pull(index);
    }
  } finally {
    // A failure of one, or the client gone: the others stop too. A run waiting at its yield
    // ends now (its service call closed, its metrics counted); one mid-step, once it answers.
    const waiting: Promise<unknown>[] = [];
    for (const [index, run] of runs.entries()) {
      if (ended.has(index)) continue;
      run.cancel();
      const step = pending.get(index);
      if (step) step.then(() => discard(run));
      else waiting.push(run.events.return());
    }
    await Promise.allSettled(waiting);
  }
}

/**
 * `streamRun` over several runs: `frames` gets each event with its run's index as it comes;
 * `last` the done events of all, in order, once every run ended (a usage chunk).
 */
export async function* streamRuns(
  runs: InferRun[],
  frames: (event: AnswerEvent, index: number) => Iterable<string>,
  last: (dones: DoneEvent[]) => Iterable<string> = () => [],
): AsyncGenerator<string> {
  const dones: DoneEvent[] = [];
  try {
    for await (const { index, event } of mergeRuns(runs)) {
      if (event.type === "done") dones[index] = event;
      yield* frames(event, index);
    }
  } catch (err) {
    yield sseEvent(errorBody(toHttpError(err)));
    return;
  }
  if (runs.some((run) => run.cancelled())) return;
  yield* last(dones);
  yield SSE_DONE;
}
