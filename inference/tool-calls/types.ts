/**
 * Tool calling's shapes inside inference/: the OpenAI function tools a chat offers, how the model
 * is asked to call them (a plan) and the calls read back from its text. Structurally the same as
 * mesh/service.ts's ToolSpec and ToolChoice, which inference/ cannot import.
 */

export interface ToolFunctionSpec {
  type: "function";
  function: { name: string; description?: string; parameters?: unknown; strict?: boolean };
}

export type ToolChoiceSpec = "auto" | "none" | "required" | {
  type: "function";
  function: { name: string };
};

/** The tool fields of a chat request. */
export interface ToolRequest {
  tools?: readonly ToolFunctionSpec[];
  tool_choice?: ToolChoiceSpec;
  /** Default true, as OpenAI's. */
  parallel_tool_calls?: boolean;
}

/**
 * How a model writes a call, read from its chat template (format.ts):
 * - hermes: `<tool_call>{"name": …, "arguments": {…}}</tool_call>` (Hermes 2/3 Pro, Qwen 2.5+);
 * - llama3: a bare `{"name": …, "parameters": {…}}`, perhaps after `<|python_tag|>` (Llama 3.x);
 * - mistral: `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]` (Mistral Nemo and kin);
 * - harmony: gpt-oss's channels, a call a message `<|channel|>commentary to=functions.NAME
 *   <|constrain|>json<|message|>{…}`, reasoning the analysis channel (parse-harmony.ts);
 * - generic: a template that knows no tools: they are described in a system message and the
 *   whole answer is one JSON object, `{"tool_calls": [{"name", "arguments"}]}` or
 *   `{"response": "…"}`, as llama.cpp's server does.
 */
export type ToolFormat = "hermes" | "llama3" | "mistral" | "harmony" | "generic";

/** How one request's tools are offered and its answer read (plan.ts). */
export interface ToolCallPlan {
  format: ToolFormat;
  /** The tools the model is shown. */
  offered: ToolFunctionSpec[];
  /** Names a call may have: all offered tools, or the one tool_choice names. */
  names: string[];
  /** Text after the generation prompt that starts the answer: the opening of a forced call. */
  prefill: string;
  /** JSON Schema the answer (after the prefill) must match, enforced by constrained sampling. */
  schema?: Record<string, unknown>;
  /** The schema is what tool_choice demands (required, a named function), not just a help. */
  forced: boolean;
  /** More than one call may be made. */
  parallel: boolean;
}

/** A call read back from the model's text. */
export interface ParsedToolCall {
  name: string;
  /** JSON text of an object. */
  arguments: string;
}
