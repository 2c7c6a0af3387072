/**
 * POST /v1/completions: OpenAI's legacy text_completion, whole or streamed,
 * with its own logprobs shape (parallel arrays and a text offset per token).
 */
import type { TokenEvent } from "../mesh/mod.ts";
import { errorResponse } from "./http-error.ts";
import {
  collectRun,
  completionId,
  type InferRun,
  type InferRunDeps,
  startInfer,
  streamRun,
  unixSeconds,
  usageOf,
} from "./infer-run.ts";
import { sseEvent, sseResponse } from "./sse.ts";
import { parseCompletionBody, readJsonBody } from "./validate.ts";

export function completionsRoute(deps: InferRunDeps) {
  return async function completions(req: Request): Promise<Response> {
    try {
      const parsed = parseCompletionBody(await readJsonBody(req));
      const run = await startInfer(deps, parsed.request, req.signal, "completions");
      const logprobs = parsed.request.params.logprobs === true;
      const head = {
        id: completionId("cmpl"),
        object: "text_completion",
        created: unixSeconds(),
        model: run.model,
      };
      if (!parsed.stream) return await whole(run, head, logprobs);
      return sseResponse(chunks(run, head, logprobs, parsed.includeUsage), run.cancel);
    } catch (err) {
      return errorResponse(err);
    }
  };
}

interface Head {
  id: string;
  object: string;
  created: number;
  model: string;
}

/** OpenAI's completions logprobs: parallel arrays, one entry per token. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

function emptyLogprobs(): CompletionLogprobs {
  return { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
}

function addLogprob(to: CompletionLogprobs, event: TokenEvent, offset: number): void {
  to.tokens.push(event.token ?? event.text);
  to.token_logprobs.push(event.logprob ?? 0);
  to.top_logprobs.push(
    Object.fromEntries((event.top_logprobs ?? []).map((t) => [t.token, t.logprob])),
  );
  to.text_offset.push(offset);
}

async function whole(run: InferRun, head: Head, logprobs: boolean): Promise<Response> {
  let text = "";
  const lp = emptyLogprobs();
  const done = await collectRun(run, (event) => {
    if (logprobs) addLogprob(lp, event, text.length);
    text += event.text;
  });
  text += done.tail ?? "";
  return Response.json({
    ...head,
    choices: [{
      text,
      index: 0,
      logprobs: logprobs ? lp : null,
      finish_reason: done.finish_reason,
    }],
    usage: usageOf(done),
    timings: done.timings,
  });
}

async function* chunks(
  run: InferRun,
  head: Head,
  logprobs: boolean,
  includeUsage: boolean,
): AsyncGenerator<string> {
  const base = { ...head, ...(includeUsage ? { usage: null } : {}) };
  const chunk = (text: string, lp: CompletionLogprobs | null, finish: string | null) =>
    sseEvent({ ...base, choices: [{ text, index: 0, logprobs: lp, finish_reason: finish }] });
  let offset = 0;
  yield* streamRun(run, function* (event) {
    if (event.type === "token") {
      if (event.text === "" && !logprobs) return;
      let lp: CompletionLogprobs | null = null;
      if (logprobs) addLogprob(lp = emptyLogprobs(), event, offset);
      offset += event.text.length;
      yield chunk(event.text, lp, null);
      return;
    }
    if (event.tail) yield chunk(event.tail, null, null);
    yield chunk("", null, event.finish_reason);
    if (includeUsage) yield sseEvent({ ...base, choices: [], usage: usageOf(event) });
  });
}
