/**
 * POST /v1/chat/completions: OpenAI's chat.completion and, streamed,
 * chat.completion.chunk (role first, then content deltas, then the
 * finish_reason, then usage when asked, then [DONE]).
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
import { parseChatBody, readJsonBody } from "./validate.ts";

export function chatCompletionsRoute(deps: InferRunDeps) {
  return async function chatCompletions(req: Request): Promise<Response> {
    try {
      const parsed = parseChatBody(await readJsonBody(req));
      const run = await startInfer(deps, parsed.request, req.signal, "chat");
      const logprobs = parsed.request.params.logprobs === true;
      const head = { id: completionId("chatcmpl"), created: unixSeconds(), model: run.model };
      if (!parsed.stream) return await whole(run, head, logprobs);
      return sseResponse(chunks(run, head, logprobs, parsed.includeUsage), run.cancel);
    } catch (err) {
      return errorResponse(err);
    }
  };
}

interface Head {
  id: string;
  created: number;
  model: string;
}

async function whole(run: InferRun, head: Head, logprobs: boolean): Promise<Response> {
  let content = "";
  const entries: LogprobEntry[] = [];
  const done = await collectRun(run, (event) => {
    content += event.text;
    if (logprobs) entries.push(logprobEntry(event));
  });
  content += done.tail ?? "";
  return Response.json({
    ...head,
    object: "chat.completion",
    choices: [{
      index: 0,
      message: { role: "assistant", content },
      logprobs: logprobs ? { content: entries } : null,
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
  // With include_usage, OpenAI puts `usage: null` on every chunk but the last.
  const base = {
    ...head,
    object: "chat.completion.chunk",
    ...(includeUsage ? { usage: null } : {}),
  };
  const chunk = (delta: Record<string, string>, extra: Record<string, unknown> = {}) =>
    sseEvent({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }],
    });
  yield chunk({ role: "assistant", content: "" });
  yield* streamRun(run, function* (event) {
    if (event.type === "token") {
      if (event.text === "" && !logprobs) return; // held back: nothing to show yet
      yield chunk(
        { content: event.text },
        logprobs ? { logprobs: { content: [logprobEntry(event)] } } : {},
      );
      return;
    }
    if (event.tail) yield chunk({ content: event.tail });
    yield sseEvent({
      ...base,
      choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: event.finish_reason }],
      timings: event.timings,
    });
    if (includeUsage) yield sseEvent({ ...base, choices: [], usage: usageOf(event) });
  });
}

interface TopEntry {
  token: string;
  logprob: number;
  bytes: number[];
}

interface LogprobEntry extends TopEntry {
  top_logprobs: TopEntry[];
}

const encoder = new TextEncoder();
const bytesOf = (text: string) => [...encoder.encode(text)];

function logprobEntry(event: TokenEvent): LogprobEntry {
  const token = event.token ?? event.text;
  return {
    token,
    logprob: event.logprob ?? 0,
    bytes: bytesOf(token),
    top_logprobs: (event.top_logprobs ?? []).map((t) => ({
      token: t.token,
      logprob: t.logprob,
      bytes: bytesOf(t.token),
    })),
  };
}
