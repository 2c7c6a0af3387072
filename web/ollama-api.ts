/**
 * Ollama-compatible routes (docs/http-api.md#ollama-api) for the local tools that speak
 * Ollama's API: GET /api/tags and /api/version, POST /api/show, /api/chat and /api/generate.
 * Answers stream as NDJSON unless `stream: false`, end with Ollama's counts and durations (in
 * nanoseconds), and errors are Ollama's `{"error": "…"}`.
 */
import type {
  DoneEvent,
  InferenceService,
  LocalModelView,
  ModelInfo,
  ToolCallEvent,
} from "../mesh/mod.ts";
import { HttpError, toHttpError } from "./http-error.ts";
import { collectRun, discard, type InferRun, type InferRunDeps, startInfer } from "./infer-run.ts";
import {
  modelOf,
  type OllamaRequest,
  parseOllamaChat,
  parseOllamaGenerate,
} from "./ollama-request.ts";
import { readJsonBody } from "./validate.ts";
import { reasoningOf, tailReasoningOf } from "./reasoning.ts";
import { ollamaEmbedRoute } from "./ollama-embed.ts";

/** The Ollama API level these routes follow (clients check it before using newer fields). */
export const OLLAMA_VERSION = "0.9.0";

export interface OllamaDeps extends InferRunDeps {
  /** The model this node serves itself: its template and architecture go in /api/show. */
  local?: LocalModelView;
}

// Grove's models carry no time of change; a fixed one keeps the answers stable.
const MODIFIED_AT = "1970-01-01T00:00:00Z";

export function ollamaRoutes(deps: OllamaDeps) {
  const { service } = deps;

  async function tags(): Promise<Response> {
    try {
      const models = await service.models();
      return Response.json({ models: models.map((m) => listed(m, deps.local)) });
    } catch (err) {
      return ollamaError(err);
    }
  }

  async function show(req: Request): Promise<Response> {
    try {
      const name = modelOf(await readJsonBody(req));
      const info = await find(service, name);
      const local = isLocal(info, deps.local) ? deps.local : undefined;
      const meta = local?.model.metadata ?? {};
      const template = meta["tokenizer.chat_template"];
      const modelInfo: Record<string, unknown> = {};
      if (local) {
        const arch = local.model.config.arch;
        modelInfo["general.architecture"] = arch;
        modelInfo[`${arch}.context_length`] = local.model.ctxSize;
        modelInfo[`${arch}.block_count`] = local.model.config.layers;
        modelInfo[`${arch}.embedding_length`] = local.model.config.dim;
      }
      return Response.json({
        modelfile: "",
        parameters: "",
        template: typeof template === "string" ? template : "",
        details: details(local),
        model_info: modelInfo,
        capabilities: ["completion"],
        modified_at: MODIFIED_AT,
      });
    } catch (err) {
      return ollamaError(err);
    }
  }

  async function chat(req: Request): Promise<Response> {
    try {
      const parsed = parseOllamaChat(await readJsonBody(req));
      const body = (text: string) => ({ message: { role: "assistant", content: text } });
      if (parsed.load) return await loaded(service, parsed, body);
      return await answer(deps, parsed, req.signal, "chat", body);
    } catch (err) {
      return ollamaError(err);
    }
  }

  async function generate(req: Request): Promise<Response> {
    try {
      const parsed = parseOllamaGenerate(await readJsonBody(req));
      const body = (text: string) => ({ response: text });
      if (parsed.load) return await loaded(service, parsed, body);
      return await answer(deps, parsed, req.signal, "completions", body);
    } catch (err) {
      return ollamaError(err);
    }
  }

  return {
    tags,
    show,
    chat,
    generate,
    embed: ollamaEmbedRoute(service),
    version: () => Response.json({ version: OLLAMA_VERSION }),
  };
}

type Body = (text: string) => Record<string, unknown>;

/** Ollama's "load the model": nothing to generate; a served model is always loaded. */
async function loaded(service: InferenceService, parsed: OllamaRequest, body: Body) {
  const info = await find(service, parsed.request.model);
  return Response.json({
    model: info.id,
    created_at: new Date().toISOString(),
    ...body(""),
    done: true,
    done_reason: "load",
  });
}

/** One run as Ollama answers it: NDJSON lines as tokens come, or one object at the end. */
async function answer(
  deps: InferRunDeps,
  parsed: OllamaRequest,
  signal: AbortSignal,
  endpoint: "chat" | "completions",
  body: Body,
): Promise<Response> {
  const started = performance.now();
  const run = await startInfer(deps, parsed.request, signal, endpoint);
  const line = (text: string) => ({
    model: run.model,
    created_at: new Date().toISOString(),
    ...body(text),
    done: false,
  });
  // Ollama says "stop" when an answer ends in tool calls; the calls are in the message.
  const last = (done: DoneEvent, text: string, calls: ToolCallEvent[] = [], thinking = "") => {
    const out: Record<string, unknown> = {
      ...line(text),
      done: true,
      done_reason: done.finish_reason === "tool_calls" ? "stop" : done.finish_reason,
      ...durations(done, started),
    };
    withThinking(out, thinking);
    if (calls.length > 0) withCalls(out, calls);
    return out;
  };
  if (!parsed.stream) {
    let text = "";
    let thinking = "";
    const calls: ToolCallEvent[] = [];
    const done = await collectRun(run, (event) => {
      if (event.type === "token") (text += event.text, thinking += reasoningOf(event));
      else calls.push(event);
    });
    const all = thinking + tailReasoningOf(done);
    return Response.json(last(done, text + (done.tail ?? ""), calls, all));
  }
  return ndjsonResponse(lines(run, line, last), () => discard(run));
}

/**
 * Reasoning apart from the answer (gpt-oss) as Ollama gives it: `message.thinking` in a chat,
 * `thinking` beside `response` in a generation; nothing when there is none.
 */
function withThinking(out: Record<string, unknown>, thinking: string) {
  if (thinking === "") return;
  const message = out.message as Record<string, unknown> | undefined;
  if (message) message.thinking = thinking;
  else out.thinking = thinking;
}

/** Ollama's `message.tool_calls`: `{function: {name, arguments}}` with the arguments an object. */
function withCalls(out: Record<string, unknown>, calls: ToolCallEvent[]) {
  const message = out.message as Record<string, unknown>;
  message.tool_calls = calls.map((c) => ({
    function: { name: c.name, arguments: JSON.parse(c.arguments) },
  }));
}

async function* lines(
  run: InferRun,
  line: (text: string) => Record<string, unknown>,
  last: (done: DoneEvent, text: string) => Record<string, unknown>,
): AsyncGenerator<unknown> {
  try {
    for await (const event of run.events) {
      if (event.type === "token") {
        const thinking = reasoningOf(event);
        if (thinking !== "") {
          const out = line("");
          withThinking(out, thinking);
          yield out;
        }
        if (event.text !== "") yield line(event.text);
      } else if (event.type === "tool_call") {
        // As Ollama streams them: a line of its own carrying the call.
        const out = line("");
        withCalls(out, [event]);
        yield out;
      } else if (event.type === "done") {
        const thinking = tailReasoningOf(event);
        if (thinking !== "") {
          const out = line("");
          withThinking(out, thinking);
          yield out;
        }
        if (event.tail) yield line(event.tail);
        yield last(event, "");
      }
    }
  } catch (err) {
    // Mid-stream, an error is one more line, as Ollama sends it.
    yield { error: toHttpError(err).message };
  }
}

/** Ollama's counts and durations (nanoseconds, integers). */
function durations(done: DoneEvent, started: number) {
  const ns = (ms: number) => Math.round(ms * 1e6);
  return {
    total_duration: ns(performance.now() - started),
    load_duration: 0, // the model is loaded before a node takes requests
    prompt_eval_count: done.usage.prompt_tokens,
    prompt_eval_duration: ns(done.timings.prompt_ms),
    eval_count: done.usage.completion_tokens,
    eval_duration: ns(done.timings.predicted_ms),
  };
}

const NDJSON_HEADERS = {
  "content-type": "application/x-ndjson",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};

/** One JSON object per line, pulled on demand; `onCancel` when the client goes away. */
function ndjsonResponse(items: AsyncGenerator<unknown>, onCancel: () => void): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const step = await items.next();
        if (step.done) controller.close();
        else controller.enqueue(encoder.encode(JSON.stringify(step.value) + "\n"));
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      onCancel();
      await items.return(undefined);
    },
  }, { highWaterMark: 0 });
  return new Response(body, { headers: NDJSON_HEADERS });
}

async function find(service: InferenceService, name: string): Promise<ModelInfo> {
  const found = (await service.models()).find((m) => m.id === name || m.name === name);
  if (!found) {
    throw new HttpError(404, `model '${name}' not found`, "not_found_error", "model_not_found");
  }
  return found;
}

function isLocal(m: ModelInfo, local: LocalModelView | undefined): boolean {
  return local !== undefined && local.info.id === m.id;
}

function listed(m: ModelInfo, local: LocalModelView | undefined) {
  return {
    name: m.id,
    model: m.id,
    modified_at: MODIFIED_AT,
    size: 0, // a mesh's model has no size on this node's disk
    digest: "",
    details: details(isLocal(m, local) ? local : undefined),
  };
}

function details(local: LocalModelView | undefined) {
  const arch = local?.model.config.arch ?? "";
  const label = local?.model.metadata["general.size_label"];
  return {
    parent_model: "",
    format: "gguf",
    family: arch,
    families: arch === "" ? null : [arch],
    parameter_size: typeof label === "string" ? label : "",
    quantization_level: "",
  };
}

/** Ollama's error shape: `{"error": "message"}`, with the status the failure has. */
function ollamaError(err: unknown): Response {
  const http = toHttpError(err);
  return Response.json({ error: http.message }, { status: http.status });
}
