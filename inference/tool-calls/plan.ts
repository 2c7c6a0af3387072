/**
 * How one chat request's tools are offered and its answer read: the template's format, the
 * tools shown, the names a call may have, and, where tool_choice demands a call (`required`, a
 * named function), a prefill that opens the call and a JSON Schema for the rest, so constrained
 * sampling makes even a weak model write a valid one. The generic format's whole answer is JSON,
 * so it gets a schema with `auto` too (a call or `{"response": …}`), as llama.cpp's server does.
 * The serving node computes the same plan twice, rendering the prompt and reading the answer.
 */
import { detectToolFormat } from "./format.ts";
import type { ToolCallPlan, ToolFormat, ToolFunctionSpec, ToolRequest } from "./types.ts";

/** The plan, or undefined when no tool is offered (none given, or tool_choice `none`). */
export function toolCallPlan(
  template: string | undefined,
  req: ToolRequest,
): ToolCallPlan | undefined {
  const tools = req.tools ?? [];
  const choice = req.tool_choice ?? "auto";
  if (tools.length === 0 || choice === "none") return undefined;
  const format = detectToolFormat(template);
  const parallel = req.parallel_tool_calls !== false;
  const named = typeof choice === "object" ? choice.function.name : undefined;
  const callable = named === undefined
    ? [...tools]
    : tools.filter((t) => t.function.name === named);
  const forced = choice === "required" || named !== undefined;
  const plan: ToolCallPlan = {
    format,
    offered: [...tools],
    names: callable.map((t) => t.function.name),
    prefill: "",
    forced,
    parallel,
  };
  if (format === "generic") {
    plan.schema = genericSchema(callable, parallel, forced);
  } else if (format === "harmony") {
    // The call's header names its function, so only a call of one function can be opened by the
    // prompt; `required` among several is asked for but not enforced (the header is no JSON).
    if (forced && callable.length === 1) {
      plan.prefill = harmonyCallHeader(callable[0].function.name);
      plan.schema = parametersOf(callable[0]) as Record<string, unknown>;
    }
  } else if (forced) {
    plan.prefill = PREFILL[format];
    plan.schema = forcedSchema(format, callable, parallel);
  }
  return plan;
}

/** A harmony call's header, as gpt-oss writes it after `<|start|>assistant`. */
export function harmonyCallHeader(name: string): string {
  return `<|channel|>commentary to=functions.${name} <|constrain|>json<|message|>`;
}

/** What opens a call in each format; the model continues from there. */
const PREFILL: Record<Exclude<ToolFormat, "generic" | "harmony">, string> = {
  hermes: "<tool_call>\n",
  llama3: "",
  mistral: "[TOOL_CALLS]",
};

function forcedSchema(
  format: Exclude<ToolFormat, "generic" | "harmony">,
  tools: ToolFunctionSpec[],
  parallel: boolean,
): Record<string, unknown> {
  if (format === "llama3") return oneOf(tools.map((t) => callSchema(t, "parameters")));
  if (format === "hermes") return oneOf(tools.map((t) => callSchema(t, "arguments")));
  return callList(tools, parallel);
}

function genericSchema(
  tools: ToolFunctionSpec[],
  parallel: boolean,
  forced: boolean,
): Record<string, unknown> {
  const calls = {
    type: "object",
    properties: { tool_calls: callList(tools, parallel) },
    required: ["tool_calls"],
    additionalProperties: false,
  };
  if (forced) return calls;
  const response = {
    type: "object",
    properties: { response: { type: "string" } },
    required: ["response"],
    additionalProperties: false,
  };
  return { anyOf: [calls, response] };
}

function callList(tools: ToolFunctionSpec[], parallel: boolean): Record<string, unknown> {
  const list: Record<string, unknown> = {
    type: "array",
    items: oneOf(tools.map((t) => callSchema(t, "arguments"))),
    minItems: 1,
  };
  if (!parallel) list.maxItems = 1;
  return list;
}

/** `{"name": NAME, KEY: arguments}`, the name first as the models write it. */
function callSchema(tool: ToolFunctionSpec, key: string): Record<string, unknown> {
  return {
    type: "object",
    properties: {
      name: { type: "string", const: tool.function.name },
      [key]: parametersOf(tool),
    },
    required: ["name", key],
    additionalProperties: false,
  };
}

/** The arguments' schema, always of an object: without `parameters`, any object (OpenAI: none). */
export function parametersOf(tool: ToolFunctionSpec): unknown {
  const p = tool.function.parameters;
  if (p === undefined || p === null) return { type: "object" };
  const schema = p as Record<string, unknown>;
  return typeof p === "object" && !Array.isArray(p) && schema.type === undefined
    ? { type: "object", ...schema }
    : p;
}

function oneOf(schemas: Record<string, unknown>[]): Record<string, unknown> {
  return schemas.length === 1 ? schemas[0] : { anyOf: schemas };
}
