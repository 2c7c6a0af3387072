/**
 * POST /v1/chat/completions: OpenAI's chat.completion and, streamed,
 * chat.completion.chunk (role first, then content deltas, then the
 * finish_reason, then usage when asked, then [DONE]). Reasoning a model writes apart from its
 * answer (gpt-oss) is `reasoning_content`, in the message and in deltas, as llama.cpp's server
 * gives it.
 */
import type { DoneEvent, TokenEvent, ToolCallEvent } from "../mesh/mod.ts";
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
import { chatToolCall, chatToolCallDelta } from "./openai-tools.ts";
import { reasoningOf, tailReasoningOf } from "./reasoning.ts";
import { sseEvent, sseResponse } from "./sse.ts";
import { parseChatBody, readJsonBody } from "./validate.ts";

export function chatCompletionsRoute(deps: InferRunDeps) {
  return async function chatCompletions(req: Request): Promise<Response> {
    try {
      const parsed = parseChatBody(await readJsonBody(req));
      const runs = await startInfers(deps, parsed.request, parsed.n, req.signal, "chat");
      const logprobs = parsed.request.params.logprobs === true;
      const head = { id: completionId("chatcmpl"), created: unixSeconds(), model: runs[0].model };
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
  created: number;
  model: string;
}

async function whole(runs: InferRun[], head: Head, logprobs: boolean): Promise<Response> {
  const contents = runs.map(() => "");
  const reasonings = runs.map(() => "");
  const entries: LogprobEntry[][] = runs.map(() => []);
  const calls: ToolCallEvent[][] = runs.map(() => []);
  const dones = await collectRuns(runs, (event, i) => {
    if (event.type === "tool_call") return void calls[i].push(event);
    contents[i] += event.text;
    reasonings[i] += reasoningOf(event);
    if (logprobs) entries[i].push(logprobEntry(event));
  });
  return Response.json({
    ...head,
    object: "chat.completion",
    choices: dones.map((done, index) => ({
      index,
      message: message(
        contents[index] + (done.tail ?? ""),
        calls[index],
        reasonings[index] + tailReasoningOf(done),
      ),
      logprobs: logprobs ? { content: entries[index], refusal: null } : null,
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
  // With include_usage, OpenAI puts `usage: null` on every chunk but the last.
  const base = {
    ...head,
    object: "chat.completion.chunk",
    ...(includeUsage ? { usage: null } : {}),
  };
  const chunk = (
    index: number,
    delta: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ) =>
    sseEvent({
      ...base,
      choices: [{ index, delta, logprobs: null, finish_reason: null, ...extra }],
    });
  for (let i = 0; i < runs.length; i++) yield chunk(i, { role: "assistant", content: "" });
  yield* streamRuns(runs, function* (event, index) {
    if (event.type === "token") {
      const reasoning = reasoningOf(event);
      const lp = logprobs ? { logprobs: { content: [logprobEntry(event)], refusal: null } } : {};
      // The token's logprobs go with its content, or with its reasoning when it wrote only that.
      const reasoned = reasoning !== "";
      if (reasoned) {
        yield chunk(index, { reasoning_content: reasoning }, event.text === "" ? lp : {});
      }
      if (event.text === "" && (!logprobs || reasoned)) return; // nothing to show yet
      yield chunk(index, { content: event.text }, lp);
      return;
    }
    if (event.type === "tool_call") {
      yield chunk(index, { tool_calls: [chatToolCallDelta(event)] });
      return;
    }
    const reasoning = tailReasoningOf(event);
    if (reasoning !== "") yield chunk(index, { reasoning_content: reasoning });
    if (event.tail) yield chunk(index, { content: event.tail });
    yield sseEvent({
      ...base,
      choices: [{ index, delta: {}, logprobs: null, finish_reason: event.finish_reason }],
      timings: event.timings,
    });
  }, function* (dones: DoneEvent[]) {
    if (includeUsage) yield sseEvent({ ...base, choices: [], usage: usageOfAll(dones) });
  });
}

/**
 * The assistant's message: its text (null when it only called tools), its reasoning when it
 * wrote some, and its calls. `refusal` is always there (null: this node never refuses in words),
 * as OpenAI's schema requires it.
 */
function message(content: string, calls: ToolCallEvent[], reasoning: string) {
  const thought = reasoning === "" ? {} : { reasoning_content: reasoning };
  if (calls.length === 0) return { role: "assistant", content, ...thought, refusal: null };
  return {
    role: "assistant",
    content: content === "" ? null : content,
    ...thought,
    refusal: null,
    tool_calls: calls.map(chatToolCall),
  };
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
