/**
 * POST /v1/responses and GET /v1/responses/:id: OpenAI's Responses API on the same engine
 * (docs/http-api.md#responses). The answer is a `response` object whose output items are a
 * message and the function calls made; streamed, its events in order, each with its
 * `sequence_number`. The node keeps its recent responses (in memory, the last
 * MAX_STORED) so `previous_response_id` continues a conversation without resending it.
 */
import type { ChatMessage, DoneEvent, TokenEvent, ToolCallEvent } from "../mesh/mod.ts";
import { errorBody, errorResponse, HttpError, toHttpError } from "./http-error.ts";
import { completionId, type InferRunDeps, startInfer, unixSeconds } from "./infer-run.ts";
import { parseResponsesBody } from "./responses-request.ts";
import { readJsonBody } from "./validate.ts";
import { sseResponse } from "./sse.ts";

/** Responses kept for previous_response_id and GET: enough for a few agents' running turns. */
const MAX_STORED = 256;

interface Stored {
  response: Record<string, unknown>;
  /** The conversation so far, its answer included, as chat messages. */
  conversation: ChatMessage[];
}

const newId = (prefix: string) => completionId(prefix).replace("-", "_");

export function responsesRoutes(deps: InferRunDeps) {
  const stored = new Map<string, Stored>();
  const remember = (id: string, entry: Stored) => {
    stored.set(id, entry);
    if (stored.size > MAX_STORED) stored.delete(stored.keys().next().value!);
  };

  async function create(req: Request): Promise<Response> {
    try {
      const parsed = parseResponsesBody(
        await readJsonBody(req),
        (id) => stored.get(id)?.conversation,
      );
      const run = await startInfer(deps, parsed.request, req.signal, "chat");
      const id = newId("resp");
      const base = {
        id,
        object: "response",
        created_at: unixSeconds(),
        model: run.model,
        error: null,
        ...parsed.echo,
      };
      const builder = outputBuilder();
      const finish = (done: DoneEvent) => {
        const response = {
          ...base,
          status: done.finish_reason === "length" ? "incomplete" : "completed",
          incomplete_details: done.finish_reason === "length"
            ? { reason: "max_output_tokens" }
            : null,
          output: builder.items(),
          usage: {
            input_tokens: done.usage.prompt_tokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: done.usage.completion_tokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: done.usage.prompt_tokens + done.usage.completion_tokens,
          },
        };
        remember(id, {
          response,
          conversation: [...(parsed.request.messages ?? []), ...builder.messages()],
        });
        return response;
      };
      if (!parsed.stream) {
        let done: DoneEvent | undefined;
        for await (const event of run.events as AsyncIterable<AnswerEvent>) {
          if (event.type === "done") done = event;
          else builder.add(event);
        }
        if (!done) {
          throw new HttpError(499, "the client closed the request", "cancelled", "cancelled");
        }
        builder.end(done);
        return Response.json(finish(done));
      }
      return sseResponse(
        stream(run.events as AsyncIterable<AnswerEvent>, base, builder, finish),
        run.cancel,
      );
    } catch (err) {
      return errorResponse(err);
    }
  }

  function get(id: string): Response {
    const entry = stored.get(id);
    if (!entry) {
      return errorResponse(
        new HttpError(404, `no response ${id} on this node`, "invalid_request_error", "not_found"),
      );
    }
    return Response.json(entry.response);
  }

  return { create, get };
}

type AnswerEvent = TokenEvent | ToolCallEvent | DoneEvent;

/** The output items as the answer streams in: one message, then the calls in their order. */
function outputBuilder() {
  const messageId = newId("msg");
  let text = "";
  const calls: ToolCallEvent[] = [];
  return {
    messageId,
    add(event: TokenEvent | ToolCallEvent) {
      if (event.type === "token") text += event.text;
      else calls.push(event);
    },
    end(done: DoneEvent) {
      text += done.tail ?? "";
    },
    text: () => text,
    message: (status: string) => ({
      id: messageId,
      type: "message",
      status,
      role: "assistant",
      content: status === "in_progress" ? [] : [{ type: "output_text", text, annotations: [] }],
    }),
    call: (c: ToolCallEvent, status: string) => ({
      id: `fc_${c.id.replace(/^call_/, "")}`,
      type: "function_call",
      status,
      call_id: c.id,
      name: c.name,
      arguments: status === "in_progress" ? "" : c.arguments,
    }),
    items() {
      const out: unknown[] = [];
      if (text !== "" || calls.length === 0) out.push(this.message("completed"));
      for (const c of calls) out.push(this.call(c, "completed"));
      return out;
    },
    /** The answer as chat messages, for the next turn's history. */
    messages(): ChatMessage[] {
      const m: ChatMessage = {
        role: "assistant",
        content: text === "" && calls.length > 0 ? null : text,
      };
      if (calls.length > 0) {
        m.tool_calls = calls.map((c) => ({
          id: c.id,
          type: "function",
          function: { name: c.name, arguments: c.arguments },
        }));
      }
      return [m];
    },
  };
}

async function* stream(
  events: AsyncIterable<AnswerEvent>,
  base: Record<string, unknown>,
  builder: ReturnType<typeof outputBuilder>,
  finish: (done: DoneEvent) => Record<string, unknown>,
): AsyncGenerator<string> {
  let seq = 0;
  // Text deltas and their done event carry `logprobs` ([]: none asked), which OpenAI's schema
  // requires of them.
  const frame = (type: string, data: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const pending = {
    ...base,
    status: "in_progress",
    output: [],
    usage: null,
    incomplete_details: null,
  };
  yield frame("response.created", { response: pending });
  yield frame("response.in_progress", { response: pending });
  let outputIndex = -1;
  let messageOpen = false;
  const part = (text: string) => ({ type: "output_text", text, annotations: [] });
  const item_id = builder.messageId;
  function* openMessage() {
    if (messageOpen) return;
    messageOpen = true;
    outputIndex++;
    yield frame("response.output_item.added", {
      output_index: outputIndex,
      item: builder.message("in_progress"),
    });
    yield frame("response.content_part.added", {
      item_id,
      output_index: outputIndex,
      content_index: 0,
      part: part(""),
    });
  }
  function* closeMessage() {
    if (!messageOpen) return;
    const text = builder.text();
    const at = { item_id, output_index: outputIndex, content_index: 0 };
    yield frame("response.output_text.done", { ...at, text, logprobs: [] });
    yield frame("response.content_part.done", { ...at, part: part(text) });
    yield frame("response.output_item.done", {
      output_index: outputIndex,
      item: builder.message("completed"),
    });
    messageOpen = false;
  }
  try {
    for await (const event of events) {
      if (event.type === "token") {
        builder.add(event);
        if (event.text === "") continue;
        yield* openMessage();
        yield frame("response.output_text.delta", {
          item_id,
          output_index: outputIndex,
          content_index: 0,
          delta: event.text,
          logprobs: [],
        });
      } else if (event.type === "tool_call") {
        builder.add(event);
        yield* closeMessage();
        outputIndex++;
        const item = builder.call(event, "in_progress");
        yield frame("response.output_item.added", { output_index: outputIndex, item });
        const at = { item_id: item.id, output_index: outputIndex };
        yield frame("response.function_call_arguments.delta", { ...at, delta: event.arguments });
        yield frame("response.function_call_arguments.done", { ...at, arguments: event.arguments });
        yield frame("response.output_item.done", {
          output_index: outputIndex,
          item: builder.call(event, "completed"),
        });
      } else {
        builder.end(event);
        if (event.tail) {
          yield* openMessage();
          yield frame("response.output_text.delta", {
            item_id,
            output_index: outputIndex,
            content_index: 0,
            delta: event.tail,
            logprobs: [],
          });
        }
        if (outputIndex < 0) yield* openMessage(); // an empty answer is still one message
        yield* closeMessage();
        const response = finish(event);
        const type = response.status === "incomplete"
          ? "response.incomplete"
          : "response.completed";
        yield frame(type, { response });
      }
    }
  } catch (err) {
    const e = toHttpError(err);
    yield frame("error", { ...errorBody(e).error });
  }
}
