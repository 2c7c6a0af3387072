/**
 * POST /v1/messages: Anthropic's Messages API on the same engine (docs/http-api.md#anthropic), so
 * tools that speak it (Claude Code, the Anthropic SDKs) use a node unchanged. The body maps onto
 * an InferRequest (anthropic-request.ts); the answer is Anthropic's `message`, or, streamed, its
 * events in order: message_start, content_block_start, content_block_delta…, content_block_stop,
 * message_delta, message_stop. Errors use Anthropic's shape, not OpenAI's. Reasoning a model
 * writes apart from its answer (gpt-oss) comes first as a `thinking` block (its signature empty:
 * nothing signs it), as llama.cpp's server gives it.
 */
import type { DoneEvent, ToolCallEvent } from "../mesh/mod.ts";
import { HttpError, toHttpError } from "./http-error.ts";
import {
  collectRun,
  completionId,
  type InferRun,
  type InferRunDeps,
  startInfer,
} from "./infer-run.ts";
import { parseMessagesBody } from "./anthropic-request.ts";
import { readJsonBody } from "./validate.ts";
import { reasoningOf, tailReasoningOf } from "./reasoning.ts";
import { sseResponse } from "./sse.ts";

export function messagesRoute(deps: InferRunDeps) {
  return async function messages(req: Request): Promise<Response> {
    try {
      const parsed = parseMessagesBody(await readJsonBody(req));
      const run = await startInfer(deps, parsed.request, req.signal, "chat");
      const head = { id: completionId("msg").replace("-", "_"), model: run.model };
      if (!parsed.stream) return Response.json(await whole(run, head));
      return sseResponse(events(run, head), run.cancel);
    } catch (err) {
      return anthropicError(toHttpError(err));
    }
  };
}

/**
 * POST /v1/messages/count_tokens: the body of a message without `max_tokens`, counted by a node
 * that holds the model (its template and tokenizer): a request for no token, whose `done` says
 * the prompt's size.
 */
export function countTokensRoute(deps: InferRunDeps) {
  return async function countTokens(req: Request): Promise<Response> {
    try {
      const body = await readJsonBody(req);
      const { request } = parseMessagesBody({ ...body, max_tokens: 1, stream: false });
      request.params.max_tokens = 0;
      const run = await startInfer(deps, request, req.signal, "chat");
      const done = await collectRun(run, () => {});
      return Response.json({ input_tokens: done.usage.prompt_tokens });
    } catch (err) {
      return anthropicError(toHttpError(err));
    }
  };
}

interface Head {
  id: string;
  model: string;
}

/** Anthropic's stop reasons for ours. */
function stopReason(done: DoneEvent): "end_turn" | "max_tokens" | "tool_use" {
  if (done.finish_reason === "length") return "max_tokens";
  if (done.finish_reason === "tool_calls") return "tool_use";
  return "end_turn";
}

function message(head: Head, content: unknown[], done: DoneEvent | undefined) {
  return {
    id: head.id,
    type: "message",
    role: "assistant",
    model: head.model,
    content,
    stop_reason: done ? stopReason(done) : null,
    stop_sequence: null,
    usage: {
      input_tokens: done?.usage.prompt_tokens ?? 0,
      output_tokens: done?.usage.completion_tokens ?? 0,
    },
  };
}

async function whole(run: InferRun, head: Head) {
  let text = "";
  let thinking = "";
  const calls: ToolCallEvent[] = [];
  const done = await collectRun(run, (event) => {
    if (event.type === "tool_call") calls.push(event);
    else (text += event.text, thinking += reasoningOf(event));
  });
  text += done.tail ?? "";
  thinking += tailReasoningOf(done);
  const blocks = calls.map((c) => ({ ...toolUse(c), input: JSON.parse(c.arguments) }));
  return message(head, [
    ...(thinking === "" ? [] : [{ type: "thinking", thinking, signature: "" }]),
    ...(text === "" ? [] : [{ type: "text", text }]),
    ...blocks,
  ], done);
}

/** A call as a `tool_use` block (its input left out: whole, or streamed as JSON deltas). */
function toolUse(call: ToolCallEvent) {
  return { type: "tool_use", id: call.id.replace(/^call_/, "toolu_"), name: call.name };
}

/** An SSE frame as Anthropic sends it: a named event with its JSON. */
function frame(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

async function* events(run: InferRun, head: Head): AsyncGenerator<string> {
  yield frame("message_start", { message: message(head, [], undefined) });
  // Blocks in order: a block of thinking or of text runs while its kind of text comes (opened
  // by its first piece), then each call has its own.
  let index = -1;
  let open: "text" | "thinking" | undefined;
  const piece = (kind: "text" | "thinking", t: string) => {
    const out: string[] = [];
    if (t === "") return out;
    if (open !== kind) {
      out.push(...close());
      index++;
      const block = kind === "text"
        ? { type: "text", text: "" }
        : { type: "thinking", thinking: "" };
      out.push(frame("content_block_start", { index, content_block: block }));
      open = kind;
    }
    const delta = kind === "text"
      ? { type: "text_delta", text: t }
      : { type: "thinking_delta", thinking: t };
    out.push(frame("content_block_delta", { index, delta }));
    return out;
  };
  const text = (t: string) => piece("text", t);
  const close = () => {
    if (!open) return [];
    const out: string[] = [];
    // Anthropic closes a thinking block with its signature.
    if (open === "thinking") {
      const delta = { type: "signature_delta", signature: "" };
      out.push(frame("content_block_delta", { index, delta }));
    }
    open = undefined;
    out.push(frame("content_block_stop", { index }));
    return out;
  };
  try {
    for await (const event of run.events) {
      if (event.type === "token") {
        yield* piece("thinking", reasoningOf(event));
        yield* text(event.text);
        continue;
      }
      if (event.type === "tool_call") {
        yield* close();
        index++;
        yield frame("content_block_start", {
          index,
          content_block: { ...toolUse(event), input: {} },
        });
        const delta = { type: "input_json_delta", partial_json: event.arguments };
        yield frame("content_block_delta", { index, delta });
        yield frame("content_block_stop", { index });
        continue;
      }
      yield* piece("thinking", tailReasoningOf(event));
      yield* text(event.tail ?? "");
      yield* close();
      yield frame("message_delta", {
        delta: { stop_reason: stopReason(event), stop_sequence: null },
        // The prompt's size is known only at the end here (message_start says 0): clients
        // add the delta's usage to the message's, so both counts arrive.
        usage: {
          input_tokens: event.usage.prompt_tokens,
          output_tokens: event.usage.completion_tokens,
        },
      });
      yield frame("message_stop", {});
    }
  } catch (err) {
    const e = toHttpError(err);
    yield frame("error", { error: { type: errorType(e), message: e.message } });
  }
}

/** Anthropic's error types for our statuses. */
function errorType(err: HttpError): string {
  if (err.status === 401) return "authentication_error";
  if (err.status === 403) return "permission_error";
  if (err.status === 404) return "not_found_error";
  if (err.status === 413) return "request_too_large";
  if (err.status === 429) return "rate_limit_error";
  if (err.status === 503) return "overloaded_error";
  if (err.status >= 500) return "api_error";
  return "invalid_request_error";
}

/** `{"type":"error","error":{"type","message"}}` with the route's status. */
export function anthropicError(err: HttpError): Response {
  return Response.json(
    { type: "error", error: { type: errorType(err), message: err.message } },
    { status: err.status },
  );
}
