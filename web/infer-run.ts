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
  type InferRequest,
  ServiceError,
  serviceErrorOf,
  type TokenEvent,
} from "../mesh/mod.ts";
import { errorBody, HttpError, serviceHttpError, toHttpError } from "./http-error.ts";
import { SSE_DONE, sseEvent } from "./sse.ts";
import type { InferenceRecord, Metrics } from "./metrics.ts";

export interface InferRun {
  model: string;
  /** Token events, then one done event; a ServiceError thrown mid-way ends it. */
  events: AsyncGenerator<TokenEvent | DoneEvent, void>;
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
  const req = { ...request, model: request.model || await defaultModel(deps.service) };
  let recorded = false; // one record per request, whichever way it ends
  const record = (outcome: InferenceRecord["outcome"], extra: Partial<InferenceRecord> = {}) => {
    if (recorded) return;
    recorded = true;
    deps.metrics.inference({
      endpoint,
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
  async function* events(head: TokenEvent | DoneEvent): AsyncGenerator<TokenEvent | DoneEvent> {
    let ttftSeconds: number | undefined;
    let completionTokens = 0;
    let event: InferEvent = head;
    try {
      while (true) {
        if (event.type === "error") throw serviceErrorOf(event);
        if (event.type === "token") {
          ttftSeconds ??= (performance.now() - started) / 1000;
          completionTokens++;
        } else {
          sawDone = true;
          record("ok", {
            ttftSeconds,
            promptTokens: event.usage.prompt_tokens,
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

async function defaultModel(service: InferenceService): Promise<string> {
  const models = await service.models();
  if (models.length === 0) {
    throw serviceHttpError(new ServiceError("unavailable", "no model is being served right now"));
  }
  return models[0].id;
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
 * Runs `run` to its end for a whole (unstreamed) answer, handing each token to
 * `onToken`; its done event, or a 499 when the client went away first.
 */
export async function collectRun(
  run: InferRun,
  onToken: (event: TokenEvent) => void,
): Promise<DoneEvent> {
  let done: DoneEvent | undefined;
  for await (const event of run.events) {
    if (event.type === "done") done = event;
    else onToken(event);
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
  frames: (event: TokenEvent | DoneEvent) => Iterable<string>,
): AsyncGenerator<string> {
  try {
    for await (const event of run.events) yield* frames(event);
  } catch (err) {
    yield sseEvent(errorBody(toHttpError(err)));
    return;
  }
  if (!run.cancelled()) yield SSE_DONE;
}
