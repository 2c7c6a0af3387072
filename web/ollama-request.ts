/**
 * Ollama's /api/chat and /api/generate bodies → InferRequest, with 400s that name the field.
 * Ollama's own defaults fill what `options` leaves out (temperature 0.8, top_k 40, top_p 0.9,
 * repeat_penalty 1.1), as a tool written for Ollama expects. Options that only say how Ollama
 * runs a model (threads, GPU layers, batch and context sizes) are accepted and ignored, since
 * they never change the tokens; a sampling option this node cannot honour is refused by name.
 */
import type { ChatMessage, Constraint, InferParams, InferRequest } from "../mesh/mod.ts";
import { invalidRequest } from "./http-error.ts";
import { parseChatTools, parseMessageToolCalls } from "./openai-tools.ts";

type Body = Record<string, unknown>;

/**
 * Ollama's POST routes that run or describe a model: inference as /v1 is, not commands to the
 * node (docs/http-api.md#browsers), and they take prompts (the /v1 body limit).
 */
export const OLLAMA_INFERENCE_PATHS: ReadonlySet<string> = new Set([
  "/api/chat",
  "/api/generate",
  "/api/show",
  "/api/embed",
]);

export interface OllamaRequest {
  request: InferRequest;
  /** Ollama streams unless told `stream: false`. */
  stream: boolean;
  /** No messages, or an empty prompt: Ollama's way to load a model; nothing is generated. */
  load: boolean;
}

/** Ollama's defaults (its Modelfile documentation) for the options a request leaves out. */
export const OLLAMA_DEFAULTS = {
  temperature: 0.8,
  top_k: 40,
  top_p: 0.9,
  min_p: 0,
  repeat_penalty: 1.1,
  presence_penalty: 0,
  frequency_penalty: 0,
} as const;

/** How Ollama runs a model: none of them changes what it answers. */
const RUNTIME_OPTIONS = new Set([
  "num_ctx",
  "num_batch",
  "num_gpu",
  "main_gpu",
  "low_vram",
  "f16_kv",
  "vocab_only",
  "use_mmap",
  "use_mlock",
  "num_thread",
  "numa",
  "num_keep",
]);

/** Sampling options this node has no such step for: accepted only at the value that is off. */
const NEUTRAL_OPTIONS: Record<string, unknown> = {
  repeat_last_n: 64, // the sampler's window, as Ollama's default
  typical_p: 1,
  tfs_z: 1,
  mirostat: 0,
  penalize_newline: false,
};

/** mirostat's own settings, which matter only when mirostat is on (refused above). */
const MIROSTAT_SETTINGS = new Set(["mirostat_tau", "mirostat_eta"]);

const ROLES = new Set(["system", "user", "assistant", "tool"]);

export function parseOllamaChat(body: Body): OllamaRequest {
  refuseUnsupported(body, true);
  const model = modelOf(body);
  if (!Array.isArray(body.messages)) throw invalidRequest("messages must be an array", "messages");
  const messages = body.messages.map((m, i) => message(m, `messages[${i}]`));
  // Ollama's tools are OpenAI's function tools; it has no tool_choice (always "auto").
  const tools = parseChatTools({ tools: body.tools });
  return {
    request: { model, messages, params: params(body), ...tools },
    stream: stream(body),
    load: messages.length === 0,
  };
}

/** /api/generate: the prompt through the model's chat template (with `system`), as Ollama does,
 * or as it is with `raw: true`.
 */
export function parseOllamaGenerate(body: Body): OllamaRequest {
  refuseUnsupported(body);
  for (const field of ["suffix", "template"]) {
    const v = body[field];
    if (v !== undefined && v !== null && v !== "") {
      throw invalidRequest(`${field} is not supported by this node`, field);
    }
  }
  const context = body.context;
  if (Array.isArray(context) && context.length > 0) {
    throw invalidRequest(
      "context (tokens of an earlier answer) is not supported by this node; use /api/chat",
      "context",
    );
  }
  const prompt = body.prompt ?? "";
  if (typeof prompt !== "string") throw invalidRequest("prompt must be a string", "prompt");
  const system = body.system ?? "";
  if (typeof system !== "string") throw invalidRequest("system must be a string", "system");
  const raw = body.raw ?? false;
  if (typeof raw !== "boolean") throw invalidRequest("raw must be a boolean", "raw");
  const request: InferRequest = { model: modelOf(body), params: params(body) };
  if (raw) request.prompt = prompt;
  else {
    request.messages = [
      ...(system === "" ? [] : [{ role: "system", content: system }]),
      { role: "user", content: prompt },
    ];
  }
  return { request, stream: stream(body), load: prompt === "" };
}

/** A model as Ollama names it: `name:latest` is the name itself. */
export function modelOf(body: Body): string {
  const model = body.model ?? body.name;
  if (typeof model !== "string" || model === "") {
    throw invalidRequest("model is required", "model");
  }
  return model.endsWith(":latest") ? model.slice(0, -":latest".length) : model;
}

/** /api/generate has no tools; /api/chat takes them (parseOllamaChat). */
function refuseUnsupported(body: Body, tools = false): void {
  if (body.think === true || typeof body.think === "string") {
    throw invalidRequest("think is not supported by this node's models", "think");
  }
  if (Array.isArray(body.images) && body.images.length > 0) {
    throw invalidRequest("images are not supported by this node: it reads text only", "images");
  }
  if (!tools && Array.isArray(body.tools) && body.tools.length > 0) {
    throw invalidRequest("tools are taken by /api/chat, not /api/generate", "tools");
  }
}

function stream(body: Body): boolean {
  const v = body.stream ?? true;
  if (typeof v !== "boolean") throw invalidRequest("stream must be a boolean", "stream");
  return v;
}

function message(m: unknown, at: string): ChatMessage {
  if (!isObject(m)) throw invalidRequest(`${at} must be an object`, at);
  if (typeof m.role !== "string" || !ROLES.has(m.role)) {
    throw invalidRequest(`${at}.role must be one of ${[...ROLES].join(", ")}`, `${at}.role`);
  }
  const content = m.content ?? "";
  if (typeof content !== "string") {
    throw invalidRequest(`${at}.content must be a string`, `${at}.content`);
  }
  if (Array.isArray(m.images) && m.images.length > 0) {
    throw invalidRequest("images are not supported by this node: it reads text only", at);
  }
  const out: ChatMessage = { role: m.role, content };
  // Ollama's past calls have no id and object arguments; the OpenAI checks take both.
  if (m.tool_calls !== undefined) out.tool_calls = parseMessageToolCalls(m.tool_calls, at);
  if (typeof m.tool_name === "string") out.name = m.tool_name;
  // An answer's thinking, sent back as this node gave it (gpt-oss's template shows it).
  if (m.role === "assistant" && typeof m.thinking === "string" && m.thinking !== "") {
    out.reasoning_content = m.thinking;
  }
  return out;
}

function params(body: Body): InferParams {
  const options = body.options ?? {};
  if (!isObject(options)) throw invalidRequest("options must be an object", "options");
  const p: InferParams = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    const at = `options.${key}`;
    const number = (lo: number, hi: number) => {
      if (typeof value !== "number" || !(value >= lo && value <= hi)) {
        throw invalidRequest(`${at} must be a number from ${lo} to ${hi}; got ${shown(value)}`, at);
      }
      return value;
    };
    switch (key) {
      case "temperature":
        p.temperature = number(0, 100);
        break;
      case "top_p":
        p.top_p = number(0, 1);
        break;
      case "min_p":
        p.min_p = number(0, 1);
        break;
      case "top_k":
        p.top_k = integer(value, at, 0);
        break;
      case "repeat_penalty":
        p.repeat_penalty = number(Number.MIN_VALUE, 100);
        break;
      case "presence_penalty":
        p.presence_penalty = number(-100, 100);
        break;
      case "frequency_penalty":
        p.frequency_penalty = number(-100, 100);
        break;
      case "seed":
        p.seed = integer(value, at, Number.MIN_SAFE_INTEGER);
        break;
      case "num_predict": {
        // -1: until the model stops; -2: until the context is full. Both: no limit here.
        const n = integer(value, at, -2);
        if (n === 0) throw invalidRequest(`${at} must be -1, -2 or a count ≥ 1; got 0`, at);
        if (n > 0) p.max_tokens = n;
        break;
      }
      case "stop":
        if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) {
          throw invalidRequest(`${at} must be an array of strings`, at);
        }
        if (value.some((s) => s !== "")) p.stop = value.filter((s) => s !== "");
        break;
      default:
        checkOther(key, value, at);
    }
  }
  for (const [key, value] of Object.entries(OLLAMA_DEFAULTS)) {
    const k = key as keyof typeof OLLAMA_DEFAULTS;
    if (p[k] === undefined) p[k] = value;
  }
  const constraint = format(body.format);
  if (constraint) p.constraint = constraint;
  return p;
}

function checkOther(key: string, value: unknown, at: string): void {
  if (RUNTIME_OPTIONS.has(key) || MIROSTAT_SETTINGS.has(key)) return;
  if (key in NEUTRAL_OPTIONS) {
    if (value === NEUTRAL_OPTIONS[key]) return;
    throw invalidRequest(
      `${at} is not supported by this node (only ${JSON.stringify(NEUTRAL_OPTIONS[key])})`,
      at,
    );
  }
  throw invalidRequest(`${at} is not an option this node knows`, at);
}

/** `format`: "json" for any JSON value Ollama-style (here: an object), or a JSON Schema. */
function format(v: unknown): Constraint | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (v === "json") return { type: "json_object" };
  if (isObject(v)) return { type: "json_schema", schema: v };
  throw invalidRequest('format must be "json" or a JSON Schema object', "format");
}

function integer(value: unknown, at: string, lo: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < lo) {
    throw invalidRequest(`${at} must be an integer ≥ ${lo}; got ${shown(value)}`, at);
  }
  return value as number;
}

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function isObject(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
