/**
 * Tool calling on /v1/chat/completions, OpenAI's shapes both ways: the request's `tools`,
 * `tool_choice`, `parallel_tool_calls` and the history's `tool_calls` / `tool` messages checked
 * with 400s naming the field; the answer's `message.tool_calls` and, streamed, `delta.tool_calls`
 * (a call's first and only delta carries its id, type, name and all its arguments).
 */
import type { InferRequest, ToolCallEvent, ToolChoice, ToolSpec } from "../mesh/mod.ts";
import { invalidRequest } from "./http-error.ts";

type Body = Record<string, unknown>;

/** OpenAI's bounds on function tools. */
export const TOOL_LIMITS = {
  /** Tools per request. */
  maxTools: 128,
  /** Levels of nesting in a parameters schema: far above real ones, below a stack's worth. */
  maxSchemaDepth: 64,
} as const;

export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export type ToolFields = Pick<InferRequest, "tools" | "tool_choice" | "parallel_tool_calls">;

/** The tool fields of a chat body, checked; only those present (and meaningful) come back. */
export function parseChatTools(body: Body): ToolFields {
  for (const legacy of ["functions", "function_call"]) {
    if (body[legacy] !== undefined && body[legacy] !== null) {
      throw invalidRequest(`${legacy} is deprecated and not supported: use tools`, legacy);
    }
  }
  const tools = parseTools(body.tools);
  const out: ToolFields = {};
  if (tools.length > 0) out.tools = tools;
  const choice = parseToolChoice(body.tool_choice, tools);
  if (choice !== undefined && tools.length > 0) out.tool_choice = choice;
  const parallel = body.parallel_tool_calls;
  if (parallel !== undefined && parallel !== null) {
    if (typeof parallel !== "boolean") {
      throw invalidRequest("parallel_tool_calls must be a boolean", "parallel_tool_calls");
    }
    if (tools.length > 0) out.parallel_tool_calls = parallel;
  }
  return out;
}

function parseTools(value: unknown): ToolSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidRequest("tools must be an array", "tools");
  if (value.length > TOOL_LIMITS.maxTools) {
    throw invalidRequest(
      `tools holds ${value.length} tools; at most ${TOOL_LIMITS.maxTools}`,
      "tools",
    );
  }
  const names = new Set<string>();
  return value.map((tool, i) => {
    const at = `tools[${i}]`;
    if (!isObject(tool)) throw invalidRequest(`${at} must be an object`, at);
    if (tool.type !== "function") {
      throw invalidRequest(`${at}.type must be "function"; got ${shown(tool.type)}`, `${at}.type`);
    }
    const fn = tool.function;
    if (!isObject(fn)) throw invalidRequest(`${at}.function must be an object`, `${at}.function`);
    const name = fn.name;
    if (typeof name !== "string" || !TOOL_NAME.test(name)) {
      throw invalidRequest(
        `${at}.function.name must match ^[a-zA-Z0-9_-]{1,64}$; got ${shown(name)}`,
        `${at}.function.name`,
      );
    }
    if (names.has(name)) {
      throw invalidRequest(`${at}.function.name ${name} is given twice`, `${at}.function.name`);
    }
    names.add(name);
    const spec: ToolSpec = { type: "function", function: { name } };
    const { description, parameters, strict } = fn;
    if (description !== undefined && description !== null) {
      if (typeof description !== "string") {
        throw invalidRequest(
          `${at}.function.description must be a string`,
          `${at}.function.description`,
        );
      }
      spec.function.description = description;
    }
    if (parameters !== undefined && parameters !== null) {
      spec.function.parameters = checkParameters(parameters, `${at}.function.parameters`);
    }
    if (strict !== undefined && strict !== null) {
      if (typeof strict !== "boolean") {
        throw invalidRequest(`${at}.function.strict must be a boolean`, `${at}.function.strict`);
      }
      spec.function.strict = strict;
    }
    return spec;
  });
}

/** A JSON Schema of an object (its `type`, when given, is "object"), not nested past the limit. */
function checkParameters(value: unknown, at: string): Body {
  if (!isObject(value) || (value.type !== undefined && value.type !== "object")) {
    throw invalidRequest(`${at} must be a JSON Schema of type "object"`, at);
  }
  if (depth(value, TOOL_LIMITS.maxSchemaDepth) > TOOL_LIMITS.maxSchemaDepth) {
    throw invalidRequest(`${at} is nested more than ${TOOL_LIMITS.maxSchemaDepth} levels`, at);
  }
  return value;
}

/** Nesting depth of a JSON value, counting no further than `limit + 1`. */
function depth(value: unknown, limit: number): number {
  if (value === null || typeof value !== "object") return 0;
  if (limit < 0) return 1;
  let deepest = 0;
  for (const v of Object.values(value)) deepest = Math.max(deepest, depth(v, limit - 1));
  return deepest + 1;
}

function parseToolChoice(value: unknown, tools: ToolSpec[]): ToolChoice | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === "none" || value === "auto") return value;
  if (value === "required") {
    if (tools.length === 0) {
      throw invalidRequest('tool_choice "required" needs tools', "tool_choice");
    }
    return value;
  }
  const name = isObject(value) && value.type === "function" && isObject(value.function)
    ? value.function.name
    : undefined;
  if (typeof name !== "string") {
    throw invalidRequest(
      'tool_choice must be "none", "auto", "required" or {"type": "function", "function": ' +
        `{"name": …}}; got ${shown(value)}`,
      "tool_choice",
    );
  }
  if (!tools.some((t) => t.function.name === name)) {
    throw invalidRequest(
      `tool_choice names ${shown(name)}, which is not among the tools`,
      "tool_choice",
    );
  }
  return { type: "function", function: { name } };
}

/**
 * An assistant message's `tool_calls`: `{id, type: "function", function: {name, arguments}}`
 * each, arguments as JSON text (an object given instead is taken as its JSON).
 */
export function parseMessageToolCalls(value: unknown, at: string): unknown[] {
  const field = `${at}.tool_calls`;
  if (!Array.isArray(value)) throw invalidRequest(`${field} must be an array`, field);
  return value.map((call, j) => {
    const here = `${field}[${j}]`;
    const fn = isObject(call) ? call.function : undefined;
    if (!isObject(call) || !isObject(fn) || typeof fn.name !== "string") {
      throw invalidRequest(
        `${here} must be {"id", "type": "function", "function": {"name", "arguments"}}`,
        here,
      );
    }
    if (call.type !== undefined && call.type !== "function") {
      throw invalidRequest(`${here}.type must be "function"`, `${here}.type`);
    }
    if (call.id !== undefined && typeof call.id !== "string") {
      throw invalidRequest(`${here}.id must be a string`, `${here}.id`);
    }
    const args = fn.arguments ?? "{}";
    if (typeof args !== "string" && !isObject(args)) {
      throw invalidRequest(
        `${here}.function.arguments must be a string of JSON`,
        `${here}.function.arguments`,
      );
    }
    const out: Body = {
      type: "function",
      function: {
        name: fn.name,
        arguments: typeof args === "string" ? args : JSON.stringify(args),
      },
    };
    if (call.id !== undefined) out.id = call.id;
    return out;
  });
}

/** A call as `message.tool_calls` holds it. */
export function chatToolCall(call: ToolCallEvent) {
  return {
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: call.arguments },
  };
}

/** A call as one `delta.tool_calls` entry of a chunk: whole at once, with its index. */
export function chatToolCallDelta(call: ToolCallEvent) {
  return { index: call.index, ...chatToolCall(call) };
}

function isObject(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
