/**
 * What a serving node does for its peers, seen from the outside: each request served over the
 * mesh is timed and counted (for the node's /metrics), and every start and end is a load change
 * the serve reporter should tell the relay about.
 */
import type { InferenceService, InferEvent, InferRequest } from "./service.ts";

export interface ServedRecord {
  endpoint: "chat" | "completions";
  outcome: "ok" | "error" | "cancelled";
  ttftSeconds?: number;
  durationSeconds: number;
  promptTokens: number;
  completionTokens: number;
}

export interface ServedHooks {
  onChange?: () => void;
  onServed?: (r: ServedRecord) => void;
}

export function countServed<S extends InferenceService>(service: S, hooks: ServedHooks): S {
  async function* infer(
    req: InferRequest,
    signal: AbortSignal,
    requester?: string,
  ): AsyncGenerator<InferEvent> {
    const started = performance.now();
    let ttftSeconds: number | undefined;
    let completionTokens = 0;
    let promptTokens = 0;
    let outcome: ServedRecord["outcome"] = "cancelled";
    hooks.onChange?.();
    try {
      for await (const event of service.infer(req, signal, requester)) {
        if (event.type === "token") {
          completionTokens++;
          ttftSeconds ??= (performance.now() - started) / 1000;
        } else if (event.type === "done") {
          outcome = "ok";
          promptTokens = event.usage.prompt_tokens;
          completionTokens = event.usage.completion_tokens;
        } else if (event.type === "error") outcome = "error";
        yield event;
      }
    } finally {
      hooks.onChange?.();
      hooks.onServed?.({
        endpoint: req.messages ? "chat" : "completions",
        outcome,
        ttftSeconds,
        durationSeconds: (performance.now() - started) / 1000,
        promptTokens,
        completionTokens,
      });
    }
  }
  return { ...service, infer };
}
