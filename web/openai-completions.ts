/**
 * POST /v1/completions: OpenAI's legacy text_completion, whole or streamed,
 * with its own logprobs shape (parallel arrays and a text offset per token).
 */
import type { DoneEvent, TokenEvent } from "../mesh/mod.ts";
import { errorResponse } from "./http-error.ts";
import {
  collectRuns,
  completionId,
  discard,
  type InferRun,
  type InferRunDeps,
  startInfers,
  streamRuns,
  unixSeconds,
  usageOfAll,
} from "./infer-run.ts";
import { sseEvent, sseResponse } from "./sse.ts";
import { parseCompletionBody, readJsonBody } from "./validate.ts";

export function completionsRoute(deps: InferRunDeps) {
  return async function completions(req: Request): Promise<Response> {
    try {
      const parsed = parseCompletionBody(await readJsonBody(req));
      const runs = await startInfers(deps, parsed.request, parsed.n, req.signal, "completions");
      const logprobs = parsed.request.params.logprobs === true;
      const head = {
        id: completionId("cmpl"),
        object: "text_completion",
        created: unixSeconds(),
        model: runs[0].model,
      };
      if (!parsed.stream) return await whole(runs, head, logprobs);
      return sseResponse(
        chunks(runs, head, logprobs, parsed.includeUsage),
        // Each run read to its end, even one whose first event no chunk took yet.
        () => runs.forEach(discard),
      );
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

async function whole(runs: InferRun[], head: Head, logprobs: boolean): Promise<Response> {
  const texts = runs.map(() => "");
  const lps = runs.map(emptyLogprobs);
  const dones = await collectRuns(runs, (event, i) => {
    if (event.type !== "token") return; // a plain prompt offers no tools
    if (logprobs) addLogprob(lps[i], event, texts[i].length);
    texts[i] += event.text;
  });
  return Response.json({
    ...head,
    choices: dones.map((done, index) => ({
      text: texts[index] + (done.tail ?? ""),
      index,
      logprobs: logprobs ? lps[index] : null,
      finish_reason: done.finish_reason,
    })),
    usage: usageOfAll(dones),
    timings: dones[0].timings,
  });
}

async function* chunks(
  runs: InferRun[],
  head: Head,
  logprobs: boolean,
  includeUsage: boolean,
): AsyncGenerator<string> {
  const base = { ...head, ...(includeUsage ? { usage: null } : {}) };
  const chunk = (
    index: number,
    text: string,
    lp: CompletionLogprobs | null,
    finish: string | null,
  ) => sseEvent({ ...base, choices: [{ text, index, logprobs: lp, finish_reason: finish }] });
  const offsets = runs.map(() => 0);
  yield* streamRuns(runs, function* (event, index) {
    if (event.type === "token") {
      if (event.text === "" && !logprobs) return;
      let lp: CompletionLogprobs | null = null;
      if (logprobs) addLogprob(lp = emptyLogprobs(), event, offsets[index]);
      offsets[index] += event.text.length;
      yield chunk(index, event.text, lp, null);
      return;
    }
    if (event.type === "tool_call") return; // a plain prompt offers no tools
    if (event.tail) yield chunk(index, event.tail, null, null);
    yield chunk(index, "", null, event.finish_reason);
  }, function* (dones: DoneEvent[]) {
    if (includeUsage) yield sseEvent({ ...base, choices: [], usage: usageOfAll(dones) });
  });
}
