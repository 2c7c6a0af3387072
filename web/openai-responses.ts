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
          else if (event.type === "tool_call") builder.call(event);
          else if (event.text !== "") builder.text(event.text);
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

/** An output item as it is built: a message's text so far, or a call. */
type Item =
  | { type: "message"; id: string; text: string }
  | { type: "function_call"; call: ToolCallEvent };

/**
 * The output items in the order the answer streams them: text opens a message, a call closes it
 * and follows as its own item, and text after a call opens a new message with its own id (items
 * are told apart by id, and a stream's output indexes must match the final output's).
 */
function outputBuilder() {
  const items: Item[] = [];
  const json = (i: number, status: string) => {
    const item = items[i];
    if (item.type === "message") {
      return {
        id: item.id,
        type: "message",
        status,
        role: "assistant",
        content: status === "in_progress"
          ? []
          : [{ type: "output_text", text: item.text, annotations: [] }],
      };
    }
    const c = item.call;
    return {
      id: `fc_${c.id.replace(/^call_/, "")}`,
      type: "function_call",
      status,
      call_id: c.id,
      name: c.name,
      arguments: status === "in_progress" ? "" : c.arguments,
    };
  };
  return {
    /** Adds text to the message being written, opening one where none is. */
    text(text: string): { index: number; id: string; opened: boolean } {
      let last = items.at(-1);
      const opened = last?.type !== "message";
      if (last?.type !== "message") {
        last = { type: "message", id: newId("msg"), text: "" };
        items.push(last);
      }
      last.text += text;
      return { index: items.length - 1, id: last.id, opened };
    },
    /** Adds a call; its output index. */
    call(call: ToolCallEvent): number {
      items.push({ type: "function_call", call });
      return items.length - 1;
    },
    /** The answer's end: its held-back tail, and one empty message for an empty answer. */
    end(done: DoneEvent) {
      if (done.tail) this.text(done.tail);
      if (items.length === 0) this.text("");
    },
    /** Item `i` as the API shows it with `status`. */
    json,
    textOf: (i: number) => (items[i] as { text: string }).text,
    items: () => items.map((_, i) => json(i, "completed")),
    /** The answer as chat messages, for the next turn's history. */
    messages(): ChatMessage[] {
      const text = items.map((i) => i.type === "message" ? i.text : "").join("");
      const calls = items.flatMap((i) => i.type === "function_call" ? [i.call] : []);
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
  const part = (text: string) => ({ type: "output_text", text, annotations: [] });
  /** The message being streamed: its output index and id. */
  let open: { index: number; id: string } | undefined;
  function* text(delta: string) {
    const { index, id, opened } = builder.text(delta);
    open = { index, id };
    const at = { item_id: id, output_index: index, content_index: 0 };
    if (opened) {
      yield frame("response.output_item.added", {
        output_index: index,
        item: builder.json(index, "in_progress"),
      });
      yield frame("response.content_part.added", { ...at, part: part("") });
    }
    if (delta !== "") {
      yield frame("response.output_text.delta", { ...at, delta, logprobs: [] });
    }
  }
  function* closeText() {
    if (!open) return;
    const full = builder.textOf(open.index);
    const at = { item_id: open.id, output_index: open.index, content_index: 0 };
    yield frame("response.output_text.done", { ...at, text: full, logprobs: [] });
    yield frame("response.content_part.done", { ...at, part: part(full) });
    yield frame("response.output_item.done", {
      output_index: open.index,
      item: builder.json(open.index, "completed"),
    });
    open = undefined;
  }
  try {
    for await (const event of events) {
      if (event.type === "token") {
        if (event.text !== "") yield* text(event.text);
      } else if (event.type === "tool_call") {
        yield* closeText();
        const index = builder.call(event);
        const item = builder.json(index, "in_progress");
        yield frame("response.output_item.added", { output_index: index, item });
        const at = { item_id: item.id, output_index: index };
        yield frame("response.function_call_arguments.delta", { ...at, delta: event.arguments });
        yield frame("response.function_call_arguments.done", { ...at, arguments: event.arguments });
        yield frame("response.output_item.done", {
          output_index: index,
          item: builder.json(index, "completed"),
        });
      } else {
        if (event.tail) yield* text(event.tail);
        if (builder.items().length === 0) yield* text(""); // an empty answer is still one message
        yield* closeText();
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
