/**
 * A scripted InferenceService for the web tests: replies from a list, one
 * token per tick, and notes each call's request and whether it was aborted.
 */
import type {
  DoneEvent,
  InferenceService,
  InferEvent,
  InferRequest,
  ModelInfo,
} from "../../mesh/mod.ts";
import { ServiceError } from "../../mesh/mod.ts";

export interface FakeCall {
  req: InferRequest;
  signal: AbortSignal;
  /** Tokens handed out before the stream ended. */
  sent: number;
  aborted: boolean;
}

export interface FakeServiceInit {
  models?: ModelInfo[];
  modelsError?: ServiceError;
  /** Events for a request; a ServiceError is thrown from the iteration instead. */
  reply?: (req: InferRequest) => InferEvent[] | ServiceError;
  /** A pause before each event, as a model takes time per token (pacing, not a wait). */
  tokenDelayMs?: number;
}

export const FAKE_MODEL: ModelInfo = { id: "tiny", name: "Tiny", contextLength: 64 };

/**
 * The `done` event that ends a run of `prompt` prompt tokens and `completion` generated ones,
 * each timing 1 (ms, or tokens per second), with the held-back `tail` where one is given.
 */
export function doneEvent(
  prompt: number,
  completion: number,
  finish: DoneEvent["finish_reason"] = "stop",
  tail?: string,
): DoneEvent {
  return {
    type: "done",
    finish_reason: finish,
    usage: { prompt_tokens: prompt, completion_tokens: completion },
    timings: {
      queued_ms: 0,
      prompt_n: prompt,
      prompt_ms: 1,
      prompt_per_second: 1,
      predicted_n: completion,
      predicted_ms: 1,
      predicted_per_second: 1,
    },
    ...(tail !== undefined ? { tail } : {}),
  };
}

export function tokens(...texts: string[]): InferEvent[] {
  return [
    ...texts.map((text, id) => ({ type: "token" as const, text, id })),
    {
      type: "done",
      finish_reason: "stop",
      usage: { prompt_tokens: 7, completion_tokens: texts.length },
      timings: {
        queued_ms: 0,
        prompt_n: 7,
        prompt_ms: 1,
        prompt_per_second: 7000,
        predicted_n: texts.length,
        predicted_ms: 1,
        predicted_per_second: 1000,
      },
    },
  ];
}

export function fakeService(init: FakeServiceInit = {}): InferenceService & { calls: FakeCall[] } {
  const calls: FakeCall[] = [];
  return {
    calls,
    models() {
      if (init.modelsError) return Promise.reject(init.modelsError);
      return Promise.resolve(init.models ?? [FAKE_MODEL]);
    },
    async *infer(req, signal) {
      const call: FakeCall = { req, signal, sent: 0, aborted: false };
      calls.push(call);
      const reply = init.reply?.(req) ?? tokens("Hello", ",", " world");
      if (reply instanceof ServiceError) throw reply;
      for (const event of reply) {
        if (init.tokenDelayMs) await new Promise((r) => setTimeout(r, init.tokenDelayMs));
        if (signal.aborted) {
          call.aborted = true;
          return;
        }
        if (event.type === "token") call.sent++;
        yield event;
      }
    },
    load: () => ({ active: 0, queued: 0 }),
  };
}
