/**
 * What a `/grove/infer/1` request may hold, checked by the serving node on every request (a
 * member's client may be old, buggy or hostile: it is not trusted to have validated) and by the
 * client node before it sends one (so a request no node would take never costs a peer anything).
 *
 * The limits are the widest of the HTTP APIs a client node speaks (OpenAI's chat and
 * completions today; Anthropic's Messages and Ollama's later), so whatever one of them accepts
 * passes, and each HTTP route keeps its own stricter limits (web/validate.ts). Where an API
 * documents no limit, the one here is far above any honest use and says so.
 * A failure is a ServiceError `invalid_request` whose message names the field.
 */
import { clip, fail, isObject, isTokenId } from "./frame-checks.ts";
import type { InferRequest } from "./service.ts";

export const REQUEST_LIMITS = {
  /** OpenAI's (and Ollama's) top_logprobs maximum: 20 alternatives per token. */
  maxTopLogprobs: 20,
  /** Stop strings: OpenAI takes 4, Ollama and Anthropic document none; 16 of ≤ 1 KiB each. */
  maxStop: 16,
  maxStopBytes: 1024,
  /** Anthropic's documented limit on messages in one request (OpenAI's is lower). */
  maxMessages: 100_000,
  /** Parts of one message's content (text parts; the template joins them). */
  maxContentParts: 1000,
  /** Tool calls in one assistant message (OpenAI allows 128 tools). */
  maxToolCalls: 128,
  /** A model id: catalog ids, `hf://owner/repo/path.gguf@revision`. */
  maxModelChars: 512,
  /** role, name, tool_call_id. */
  maxNameChars: 256,
  /** temperature: OpenAI 0–2, Anthropic 0–1, Ollama undocumented; 100 already samples uniformly. */
  maxTemperature: 100,
  /** repeat_penalty (llama.cpp, Ollama): > 0; 1 is off. */
  maxRepeatPenalty: 100,
  /** presence/frequency penalties: OpenAI −2–2, Ollama undocumented. */
  maxPenalty: 100,
  /** top_k: any count; past the vocabulary it keeps everything. */
  maxTopK: 2 ** 31 - 1,
  /** logit_bias values (OpenAI's bounds); the ids are checked against the model's vocabulary. */
  maxLogitBias: 100,
  /** Function tools in one request (OpenAI's limit). */
  maxTools: 128,
  /** Nesting of a tool's parameters schema: far above real ones, well below a stack's worth. */
  maxSchemaDepth: 64,
} as const;

/** OpenAI's (and Anthropic's) function names. */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** The params a serving node honours; anything else is refused, never silently dropped. */
const PARAM_CHECKS: Record<string, (v: unknown) => string | undefined> = {
  // 0 asks only for the prompt's size: the answer is `done` with its usage (count_tokens).
  max_tokens: (v) => intIn(v, 0, Number.MAX_SAFE_INTEGER, "a non-negative integer"),
  temperature: (v) => numIn(v, 0, REQUEST_LIMITS.maxTemperature),
  top_p: (v) => numIn(v, 0, 1),
  top_k: (v) => intIn(v, 0, REQUEST_LIMITS.maxTopK),
  min_p: (v) => numIn(v, 0, 1),
  repeat_penalty: (v) =>
    typeof v === "number" && v > 0 && v <= REQUEST_LIMITS.maxRepeatPenalty
      ? undefined
      : `a number > 0 and ≤ ${REQUEST_LIMITS.maxRepeatPenalty}`,
  presence_penalty: (v) => numIn(v, -REQUEST_LIMITS.maxPenalty, REQUEST_LIMITS.maxPenalty),
  frequency_penalty: (v) => numIn(v, -REQUEST_LIMITS.maxPenalty, REQUEST_LIMITS.maxPenalty),
  seed: (v) => Number.isSafeInteger(v) ? undefined : "an integer",
  stop: checkStop,
  logprobs: (v) => typeof v === "boolean" ? undefined : "a boolean",
  top_logprobs: (v) => intIn(v, 0, REQUEST_LIMITS.maxTopLogprobs),
  logit_bias: checkLogitBias,
  constraint: checkConstraint,
};

/** A frame as read off the wire → a request the service can run, or ServiceError invalid_request. */
export function parseInferRequest(frame: unknown): InferRequest {
  if (!isObject(frame)) fail("the request is not a JSON object");
  const r = frame as Record<string, unknown>;
  if (typeof r.model !== "string" || r.model === "") fail("request.model is missing");
  if (r.model.length > REQUEST_LIMITS.maxModelChars) {
    fail(`request.model is longer than ${REQUEST_LIMITS.maxModelChars} characters`);
  }
  if ((r.messages === undefined) === (r.prompt === undefined)) {
    fail("a request carries exactly one of messages and prompt");
  }
  if (r.prompt !== undefined && typeof r.prompt !== "string") {
    fail("request.prompt is not a string");
  }
  if (r.messages !== undefined) checkMessages(r.messages);
  checkTools(r);
  checkResume(r);
  if (!isObject(r.params)) fail("request.params is not an object");
  for (const [key, value] of Object.entries(r.params as Record<string, unknown>)) {
    if (value === undefined) continue;
    const check = PARAM_CHECKS[key];
    if (!check) fail(`params.${clip(key)} is not supported by this serving node`);
    const want = check(value);
    if (want !== undefined) fail(`params.${key} must be ${want}; got ${shown(value)}`);
  }
  return frame as unknown as InferRequest;
}

/**
 * `resumable` a boolean; `resume` {tokens, rng?}: the answer's tokens so far (token ids, fewer than
 * `max_tokens`; the model's vocabulary is the serving node's check) and the RNG state after them,
 * 4 uint32 words not all 0 (the one state the sampler's generator cannot leave).
 */
function checkResume(r: Record<string, unknown>): void {
  if (r.resumable !== undefined && typeof r.resumable !== "boolean") {
    fail("request.resumable is not a boolean");
  }
  const resume = r.resume;
  if (resume === undefined) return;
  if (!isObject(resume)) fail("request.resume is not an object");
  for (const key of Object.keys(resume)) {
    if (key !== "tokens" && key !== "rng") fail(`request.resume.${clip(key)} is not supported`);
  }
  const { tokens, rng } = resume;
  if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every(isTokenId)) {
    fail("request.resume.tokens must be a non-empty array of token ids");
  }
  const max = isObject(r.params) ? r.params.max_tokens : undefined;
  if (typeof max === "number" && tokens.length >= max) {
    fail(`request.resume.tokens holds ${tokens.length} tokens; max_tokens (${max}) leaves none`);
  }
  const word = (w: unknown) => Number.isInteger(w) && (w as number) >= 0 && (w as number) < 2 ** 32;
  if (
    rng !== undefined &&
    (!Array.isArray(rng) || rng.length !== 4 || !rng.every(word) || rng.every((w) => w === 0))
  ) fail("request.resume.rng must be 4 uint32 words, not all 0");
}

function checkMessages(messages: unknown): void {
  if (!Array.isArray(messages) || messages.length === 0) {
    fail("request.messages is not a non-empty array");
  }
  if (messages.length > REQUEST_LIMITS.maxMessages) {
    fail(
      `request.messages holds ${messages.length} messages; at most ${REQUEST_LIMITS.maxMessages}`,
    );
  }
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const at = `messages[${i}]`;
    if (!isObject(m)) fail(`${at} is not an object`);
    for (const key of ["role", "name", "tool_call_id"] as const) {
      const v = m[key];
      if (v === undefined && key !== "role") continue;
      if (typeof v !== "string" || v.length > REQUEST_LIMITS.maxNameChars) {
        fail(`${at}.${key} must be a string of at most ${REQUEST_LIMITS.maxNameChars} characters`);
      }
    }
    checkContent(m.content, at);
    if (m.reasoning_content !== undefined && typeof m.reasoning_content !== "string") {
      fail(`${at}.reasoning_content must be a string`);
    }
    const calls = m.tool_calls;
    if (calls === undefined) continue;
    if (!Array.isArray(calls) || calls.length > REQUEST_LIMITS.maxToolCalls) {
      fail(`${at}.tool_calls must be an array of at most ${REQUEST_LIMITS.maxToolCalls} calls`);
    }
    calls.forEach((call, j) => {
      const here = `${at}.tool_calls[${j}]`;
      if (!isObject(call)) fail(`${here} is not an object`);
      const fn = call.function;
      const max = REQUEST_LIMITS.maxNameChars;
      if (fn !== undefined && (!isObject(fn) || !isShortString(fn.name, max))) {
        fail(`${here}.function must have a name of at most ${max} characters`);
      }
      if (call.id !== undefined && !isShortString(call.id, max)) {
        fail(`${here}.id must be a string of at most ${max} characters`);
      }
    });
  }
}

/**
 * `tools` (chat only): at most 128 function tools with distinct names and object schemas nested
 * at most 64 deep (the grammar compiler and the template walk them); `tool_choice` one of OpenAI's
 * naming an offered tool; `parallel_tool_calls` a boolean.
 */
function checkTools(r: Record<string, unknown>): void {
  const { tools, tool_choice: choice, parallel_tool_calls: parallel } = r;
  const names = new Set<string>();
  if (tools !== undefined) {
    if (r.messages === undefined) fail("request.tools needs messages (a chat)");
    if (!Array.isArray(tools) || tools.length > REQUEST_LIMITS.maxTools) {
      fail(`request.tools must be an array of at most ${REQUEST_LIMITS.maxTools} tools`);
    }
    tools.forEach((tool, i) => {
      const at = `tools[${i}]`;
      const fn = isObject(tool) ? tool.function : undefined;
      if (!isObject(tool) || tool.type !== "function" || !isObject(fn)) {
        fail(`${at} is not {"type": "function", "function": {…}}`);
      }
      if (typeof fn.name !== "string" || !TOOL_NAME.test(fn.name) || names.has(fn.name)) {
        fail(`${at}.function.name must be a distinct name matching ${TOOL_NAME.source}`);
      }
      names.add(fn.name);
      if (fn.description !== undefined && typeof fn.description !== "string") {
        fail(`${at}.function.description is not a string`);
      }
      if (fn.strict !== undefined && typeof fn.strict !== "boolean") {
        fail(`${at}.function.strict is not a boolean`);
      }
      const params = fn.parameters;
      if (params === undefined) return;
      if (!isObject(params) || (params.type !== undefined && params.type !== "object")) {
        fail(`${at}.function.parameters is not a JSON Schema of an object`);
      }
      if (nesting(params, REQUEST_LIMITS.maxSchemaDepth) > REQUEST_LIMITS.maxSchemaDepth) {
        fail(`${at}.function.parameters is nested deeper than ${REQUEST_LIMITS.maxSchemaDepth}`);
      }
    });
  }
  if (choice !== undefined && choice !== "auto" && choice !== "none") {
    const named = isObject(choice) && choice.type === "function" && isObject(choice.function)
      ? choice.function.name
      : undefined;
    if (choice !== "required" && typeof named !== "string") {
      fail('request.tool_choice must be "auto", "none", "required" or a named function');
    }
    if (names.size === 0) fail("request.tool_choice needs tools");
    if (typeof named === "string" && !names.has(named)) {
      fail(`request.tool_choice names ${shown(named)}, which is not among the tools`);
    }
  }
  if (parallel !== undefined && typeof parallel !== "boolean") {
    fail("request.parallel_tool_calls is not a boolean");
  }
}

/** Nesting depth of a JSON value, counted no further than `limit + 1`. */
function nesting(value: unknown, limit: number): number {
  if (value === null || typeof value !== "object") return 0;
  if (limit < 0) return 1;
  let deepest = 0;
  for (const v of Object.values(value)) deepest = Math.max(deepest, nesting(v, limit - 1));
  return deepest + 1;
}

function checkContent(content: unknown, at: string): void {
  if (content === null || content === undefined || typeof content === "string") return;
  if (!Array.isArray(content) || content.length > REQUEST_LIMITS.maxContentParts) {
    fail(
      `${at}.content must be a string, null or an array of at most ` +
        `${REQUEST_LIMITS.maxContentParts} parts`,
    );
  }
  for (let j = 0; j < content.length; j++) {
    const part = content[j];
    if (!isObject(part) || typeof part.type !== "string") {
      fail(`${at}.content[${j}] is not a part with a type`);
    }
    if (part.text !== undefined && typeof part.text !== "string") {
      fail(`${at}.content[${j}].text is not a string`);
    }
  }
}

function checkStop(v: unknown): string | undefined {
  const { maxStop, maxStopBytes } = REQUEST_LIMITS;
  const want = `an array of at most ${maxStop} strings of at most ${maxStopBytes} bytes each`;
  if (!Array.isArray(v) || v.length > maxStop) return want;
  for (const s of v) {
    // UTF-8 is at most 3 bytes per UTF-16 unit: only long strings need counting.
    if (typeof s !== "string") return want;
    if (s.length * 3 > maxStopBytes && new TextEncoder().encode(s).length > maxStopBytes) {
      return want;
    }
  }
  return undefined;
}

function checkLogitBias(v: unknown): string | undefined {
  const max = REQUEST_LIMITS.maxLogitBias;
  const want = `an object of token ids to numbers from -${max} to ${max}`;
  if (!isObject(v)) return want;
  for (const [key, value] of Object.entries(v)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(key)) return want;
    if (typeof value !== "number" || !(value >= -max && value <= max)) return want;
  }
  return undefined;
}

/** The shape only: whether a grammar compiles is the serving node's to say (with its reason). */
function checkConstraint(v: unknown): string | undefined {
  const want = '{"type":"json_object"}, {"type":"json_schema","schema",…} or ' +
    '{"type":"gbnf","grammar"}';
  if (!isObject(v)) return want;
  const allowed: Record<string, string[]> = {
    json_object: ["type"],
    json_schema: ["type", "schema", "strict", "name"],
    gbnf: ["type", "grammar"],
  };
  const keys = allowed[v.type as string];
  if (keys === undefined || Object.keys(v).some((k) => !keys.includes(k))) return want;
  if (v.type === "json_schema") {
    if (v.schema === undefined) return want;
    if (v.strict !== undefined && typeof v.strict !== "boolean") return want;
    if (v.name !== undefined && typeof v.name !== "string") return want;
  }
  if (v.type === "gbnf" && typeof v.grammar !== "string") return want;
  return undefined;
}

function numIn(v: unknown, lo: number, hi: number): string | undefined {
  return typeof v === "number" && v >= lo && v <= hi ? undefined : `a number from ${lo} to ${hi}`;
}

function intIn(v: unknown, lo: number, hi: number, what?: string): string | undefined {
  return Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi
    ? undefined
    : what ?? `an integer from ${lo} to ${hi}`;
}

function isShortString(v: unknown, max: number): v is string {
  return typeof v === "string" && v.length <= max;
}

/** A bad value as the message shows it: short, whatever its size. */
function shown(v: unknown): string {
  return clip(JSON.stringify(v) ?? String(v));
}
