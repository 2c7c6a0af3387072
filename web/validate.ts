/**
 * OpenAI request bodies → InferRequest, with 400s that name the field. What
 * OpenAI's API defines is checked the way OpenAI does; llama.cpp's extras
 * (top_k, min_p, repeat_penalty) ride along. Unknown fields are ignored, as
 * SDKs send more than a node needs.
 */
import type { ChatMessage, Constraint, InferParams, InferRequest } from "../mesh/mod.ts";
import { invalidRequest } from "./http-error.ts";
import { parseChatTools, parseMessageToolCalls } from "./openai-tools.ts";

export interface ParsedRequest {
  /** `model` may be "" (the caller left it out): the route picks the first model offered. */
  request: InferRequest;
  stream: boolean;
  includeUsage: boolean;
  /** Choices to generate (OpenAI's `n`), each its own run of the request. */
  n: number;
}

/**
 * OpenAI's defaults for what the request leaves out: temperature 1, top_p 1,
 * and none of llama.cpp's truncations (top_k 0, min_p 0) or penalties, so a
 * client gets the distribution OpenAI documents rather than llama.cpp's.
 */
export const OPENAI_DEFAULTS = {
  temperature: 1,
  top_p: 1,
  top_k: 0,
  min_p: 0,
  repeat_penalty: 1,
  presence_penalty: 0,
  frequency_penalty: 0,
} as const;

/**
 * OpenAI's own bounds, which this API keeps whatever a serving node could do: alternatives per
 * token (chat; each costs a pass over the vocabulary), stop strings, and the legacy completions'
 * logprobs count.
 */
const OPENAI_LIMITS = {
  top_logprobs: 20,
  stop: 4,
  completions_logprobs: 5,
  logit_bias: 100,
  /** Choices per request: each is a whole generation on a serving node's slots. */
  n: 8,
} as const;

type Body = Record<string, unknown>;

export async function readJsonBody(req: Request): Promise<Body> {
  const text = await req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw invalidRequest(`the request body is not valid JSON: ${why}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalidRequest("the request body must be a JSON object");
  }
  return body as Body;
}

export function parseChatBody(body: Body): ParsedRequest {
  const messages = parseMessages(body.messages);
  const tools = parseChatTools(body);
  const logprobs = optional(body, "logprobs", isBool, "a boolean") ?? false;
  const maxTop = OPENAI_LIMITS.top_logprobs;
  const top = optional(body, "top_logprobs", intIn(0, maxTop), `an integer from 0 to ${maxTop}`);
  if (top !== undefined && !logprobs) {
    throw invalidRequest("top_logprobs needs logprobs set to true", "top_logprobs");
  }
  // Both are checked: a bad one is an error even when the other would win.
  const maxCompletion = optional(body, "max_completion_tokens", intIn(1), "an integer ≥ 1");
  const maxTokens = optional(body, "max_tokens", intIn(1), "an integer ≥ 1");
  const params = commonParams(body, maxCompletion ?? maxTokens);
  if (logprobs) Object.assign(params, { logprobs: true, top_logprobs: top ?? 0 });
  return {
    request: { model: model(body), messages, params, ...tools },
    ...streamFlags(body),
    n: choices(body),
  };
}

export function parseCompletionBody(body: Body): ParsedRequest {
  const prompt = parsePrompt(body.prompt);
  if (optional(body, "echo", isBool, "a boolean")) {
    throw invalidRequest("echo is not supported by this node", "echo");
  }
  if (body.suffix !== undefined && body.suffix !== null) {
    throw invalidRequest("suffix (fill-in-the-middle) is not supported by this node", "suffix");
  }
  const bestOf = optional(body, "best_of", intIn(1), "an integer ≥ 1");
  if (bestOf !== undefined && bestOf !== 1) {
    throw invalidRequest("best_of must be 1: this node returns one choice", "best_of");
  }
  // Legacy completions: logprobs is the number of alternatives (0–5), not a flag.
  const maxTop = OPENAI_LIMITS.completions_logprobs;
  const top = optional(body, "logprobs", intIn(0, maxTop), `an integer from 0 to ${maxTop}`);
  const params = commonParams(body, optional(body, "max_tokens", intIn(1), "an integer ≥ 1"));
  if (top !== undefined) Object.assign(params, { logprobs: true, top_logprobs: top });
  return {
    request: { model: model(body), prompt, params },
    ...streamFlags(body),
    n: choices(body),
  };
}

function choices(body: Body): number {
  const max = OPENAI_LIMITS.n;
  return optional(body, "n", intIn(1, max), `an integer from 1 to ${max}`) ?? 1;
}

/** OpenAI's shape: token ids (as strings) to numbers in [-100, 100]; {} is none. */
function logitBias(body: Body): Record<string, number> | undefined {
  const bias = body.logit_bias;
  if (bias === undefined || bias === null) return undefined;
  const max = OPENAI_LIMITS.logit_bias;
  if (typeof bias !== "object" || Array.isArray(bias)) {
    throw invalidRequest("logit_bias must be an object of token ids to biases", "logit_bias");
  }
  for (const [key, value] of Object.entries(bias)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(key)) {
      throw invalidRequest(
        `logit_bias keys must be token ids (integers as strings); got ${shown(key)}`,
        "logit_bias",
      );
    }
    if (!numIn(-max, max)(value)) {
      throw invalidRequest(
        `logit_bias[${shown(key)}] must be a number from -${max} to ${max}; got ${shown(value)}`,
        "logit_bias",
      );
    }
  }
  return Object.keys(bias).length > 0 ? bias as Record<string, number> : undefined;
}

/**
 * The grammar the output must follow: OpenAI's `response_format`, or llama.cpp's `json_schema`
 * and `grammar` (GBNF) body fields; at most one of them. Whether it compiles is the serving
 * node's to say (a 400 naming what it cannot do).
 */
function constraintOf(body: Body): Constraint | undefined {
  const given: [string, Constraint][] = [];
  const format = responseFormat(body.response_format);
  if (format) given.push(["response_format", format]);
  const schema = body.json_schema;
  if (schema !== undefined && schema !== null) {
    if (!isObject(schema)) {
      throw invalidRequest("json_schema must be a JSON Schema object", "json_schema");
    }
    given.push(["json_schema", { type: "json_schema", schema }]);
  }
  const grammar = optional(body, "grammar", isString, "a string (a GBNF grammar)");
  if (grammar !== undefined && grammar !== "") {
    given.push(["grammar", { type: "gbnf", grammar }]);
  }
  if (given.length > 1) {
    const names = given.map(([name]) => name);
    throw invalidRequest(`${names.join(" and ")} cannot be used together`, names[1]);
  }
  return given[0]?.[1];
}

function responseFormat(v: unknown): Constraint | undefined {
  if (v === undefined || v === null) return undefined;
  const at = "response_format";
  if (!isObject(v)) throw invalidRequest(`${at} must be an object`, at);
  if (v.type === "text") return undefined;
  if (v.type === "json_object") return { type: "json_object" };
  if (v.type !== "json_schema") {
    throw invalidRequest(
      `${at}.type must be one of text, json_object, json_schema; got ${shown(v.type)}`,
      at,
    );
  }
  const js = v.json_schema;
  if (!isObject(js)) throw invalidRequest(`${at}.json_schema must be an object`, at);
  if (!isString(js.name) || !/^[a-zA-Z0-9_-]{1,64}$/.test(js.name)) {
    throw invalidRequest(`${at}.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$`, at);
  }
  // The schema is optional in OpenAI's API; without one, any JSON object.
  if (js.schema === undefined || js.schema === null) return { type: "json_object" };
  const schema = js.schema;
  if (!isObject(schema)) {
    throw invalidRequest(`${at}.json_schema.schema must be a JSON Schema object`, at);
  }
  const c: Constraint = { type: "json_schema", schema, name: js.name };
  if (js.strict !== undefined && js.strict !== null) {
    c.strict = field(js.strict, isBool, `${at}.json_schema.strict`, "a boolean");
  }
  return c;
}

function commonParams(body: Body, maxTokens: number | undefined): InferParams {
  const bias = logitBias(body);
  const params: InferParams = {
    temperature: optional(body, "temperature", numIn(0, 2), "a number from 0 to 2"),
    top_p: optional(body, "top_p", numIn(0, 1), "a number from 0 to 1"),
    top_k: optional(body, "top_k", intIn(0), "an integer ≥ 0"),
    min_p: optional(body, "min_p", numIn(0, 1), "a number from 0 to 1"),
    repeat_penalty: optional(body, "repeat_penalty", (v) => isNumber(v) && v > 0, "a number > 0"),
    presence_penalty: optional(body, "presence_penalty", numIn(-2, 2), "a number from -2 to 2"),
    frequency_penalty: optional(body, "frequency_penalty", numIn(-2, 2), "a number from -2 to 2"),
  };
  for (const [key, value] of Object.entries(OPENAI_DEFAULTS)) {
    const k = key as keyof typeof OPENAI_DEFAULTS;
    if (params[k] === undefined) params[k] = value;
  }
  if (maxTokens !== undefined) params.max_tokens = maxTokens;
  if (bias !== undefined) params.logit_bias = bias;
  const constraint = constraintOf(body);
  if (constraint !== undefined) params.constraint = constraint;
  const seed = optional(body, "seed", Number.isSafeInteger, "an integer");
  if (seed !== undefined) params.seed = seed;
  const stop = parseStop(body.stop);
  if (stop.length > 0) params.stop = stop;
  return params;
}

function model(body: Body): string {
  return optional(body, "model", isString, "a string") ?? "";
}

function streamFlags(body: Body): { stream: boolean; includeUsage: boolean } {
  const stream = optional(body, "stream", isBool, "a boolean") ?? false;
  const so = body.stream_options;
  if (so === undefined || so === null) return { stream, includeUsage: false };
  if (typeof so !== "object" || Array.isArray(so)) {
    throw invalidRequest("stream_options must be an object", "stream_options");
  }
  const includeUsage = optional(
    so as Body,
    "include_usage",
    isBool,
    "a boolean",
    "stream_options.include_usage",
  ) ?? false;
  return { stream, includeUsage };
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function parseMessages(value: unknown): ChatMessage[] {
  if (value === undefined) throw invalidRequest("messages is required", "messages");
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidRequest("messages must be a non-empty array", "messages");
  }
  return value.map((m, i) => {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== "object" || Array.isArray(m)) {
      throw invalidRequest(`${at} must be an object`, at);
    }
    const { role, content } = m as Body;
    if (typeof role !== "string" || !ROLES.has(role)) {
      throw invalidRequest(
        `${at}.role must be one of ${[...ROLES].join(", ")}; got ${shown(role)}`,
        `${at}.role`,
      );
    }
    const text = contentText(content, `${at}.content`, role === "assistant");
    // OpenAI's newer "developer" role is the system prompt under another name.
    const out: ChatMessage = { role: role === "developer" ? "system" : role, content: text };
    // Only the fields templates read go on to the serving node, each of its type.
    const { name, tool_call_id, tool_calls, reasoning_content } = m as Body;
    if (name !== undefined) out.name = field(name, isString, `${at}.name`, "a string");
    if (tool_call_id !== undefined) {
      out.tool_call_id = field(tool_call_id, isString, `${at}.tool_call_id`, "a string");
    }
    if (tool_calls !== undefined && tool_calls !== null) {
      out.tool_calls = parseMessageToolCalls(tool_calls, at);
    }
    // An answer's reasoning, sent back as this node gave it (gpt-oss's template shows it).
    if (role === "assistant" && reasoning_content !== undefined && reasoning_content !== null) {
      out.reasoning_content = field(
        reasoning_content,
        isString,
        `${at}.reasoning_content`,
        "a string",
      );
    }
    if (role === "tool" && out.tool_call_id === undefined) {
      throw invalidRequest(
        `${at}.tool_call_id is required in a tool message`,
        `${at}.tool_call_id`,
      );
    }
    return out;
  });
}

function contentText(content: unknown, at: string, mayBeEmpty: boolean): string {
  if (typeof content === "string") return content;
  if ((content === null || content === undefined) && mayBeEmpty) return "";
  if (!Array.isArray(content)) {
    throw invalidRequest(`${at} must be a string or an array of text parts`, at);
  }
  return content.map((part, j) => {
    const p = part as Body | null;
    if (p?.type !== "text" || typeof p.text !== "string") {
      throw invalidRequest(
        `${at}[${j}] must be a text part ({"type":"text","text":...}); this node reads text only`,
        `${at}[${j}]`,
      );
    }
    return p.text;
  }).join("");
}

function parsePrompt(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === "string") return value[0];
  if (value === undefined) throw invalidRequest("prompt is required", "prompt");
  throw invalidRequest(
    "prompt must be a string (or an array holding one string: batches are not supported)",
    "prompt",
  );
}

function parseStop(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || !list.every(isString)) {
    throw invalidRequest("stop must be a string or an array of strings", "stop");
  }
  if (list.length > OPENAI_LIMITS.stop) {
    throw invalidRequest(`stop takes at most ${OPENAI_LIMITS.stop} strings`, "stop");
  }
  return list.filter((s) => s !== "");
}

/** The field's value when present and not null; a 400 naming it when it has the wrong type. */
function optional<T>(
  body: Body,
  field: string,
  ok: (v: unknown) => v is T,
  what: string,
  name?: string,
): T | undefined;
function optional(
  body: Body,
  field: string,
  ok: (v: unknown) => boolean,
  what: string,
  name?: string,
): number | undefined;
function optional(
  body: Body,
  field: string,
  ok: (v: unknown) => boolean,
  what: string,
  name = field,
): unknown {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (!ok(v)) throw invalidRequest(`${name} must be ${what}; got ${shown(v)}`, name);
  return v;
}

/** A wrong value as the error shows it: JSON, cut short (it may be megabytes). */
function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function field<T>(v: unknown, ok: (v: unknown) => v is T, name: string, what: string): T {
  if (!ok(v)) throw invalidRequest(`${name} must be ${what}; got ${shown(v)}`, name);
  return v;
}

const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isString = (v: unknown): v is string => typeof v === "string";
const isObject = (v: unknown): v is Body =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const numIn = (lo: number, hi: number) => (v: unknown) => isNumber(v) && v >= lo && v <= hi;
const intIn = (lo: number, hi = Number.MAX_SAFE_INTEGER) => (v: unknown) =>
  Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;
