/**
 * An OpenAI Responses body → InferRequest (docs/http-api.md#responses). `instructions` becomes
 * the system message; input items (messages, `function_call`, `function_call_output`) become
 * chat messages with OpenAI-style tool calls; a `previous_response_id` puts that response's
 * conversation first; `text.format` becomes a grammar constraint. What a node cannot honour
 * (images, files, built-in tools, reasoning) is refused by name.
 */
import type { ChatMessage, Constraint, InferRequest, ToolChoice, ToolSpec } from "../mesh/mod.ts";
import { type Body, field, intFrom, isObject, isString, numberIn } from "./body-fields.ts";
import { invalidRequest } from "./http-error.ts";

export interface ParsedResponseRequest {
  request: InferRequest;
  stream: boolean;
  /** The request's own messages (without the previous response's), to store with the answer. */
  input: ChatMessage[];
  previousResponseId: string | null;
  /** Echoed in the response object, as OpenAI does. */
  echo: Record<string, unknown>;
}

/**
 * `history(id)` gives a stored response's conversation (its input and output as chat messages),
 * or undefined when this node does not hold it.
 */
export function parseResponsesBody(
  body: Body,
  history: (id: string) => ChatMessage[] | undefined,
): ParsedResponseRequest {
  if (body.reasoning !== undefined && body.reasoning !== null) {
    throw invalidRequest("reasoning is not supported by this node", "reasoning");
  }
  const previousResponseId = field(body, "previous_response_id", isString, "a string") ?? null;
  const before = previousResponseId === null ? [] : history(previousResponseId);
  if (before === undefined) {
    throw invalidRequest(
      `previous_response_id ${previousResponseId} is not a response this node answered recently`,
      "previous_response_id",
    );
  }
  const instructions = field(body, "instructions", isString, "a string");
  const input = inputItems(body.input);
  const messages = [
    ...(instructions ? [{ role: "system", content: instructions }] : []),
    ...before.filter((m) => m.role !== "system"),
    ...input,
  ];
  const maxTokens = field(body, "max_output_tokens", intFrom(1), "an integer ≥ 1");
  const temperature = field(body, "temperature", numberIn(0, 2), "a number from 0 to 2") ?? 1;
  const topP = field(body, "top_p", numberIn(0, 1), "a number from 0 to 1") ?? 1;
  const request: InferRequest = {
    model: field(body, "model", isString, "a string") ?? "",
    messages,
    params: {
      ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
      temperature,
      top_p: topP,
      top_k: 0,
      min_p: 0,
      repeat_penalty: 1,
    },
  };
  const constraint = textFormat(body.text);
  if (constraint) request.params.constraint = constraint;
  const tools = parseTools(body.tools);
  if (tools.length > 0) request.tools = tools;
  const choice = parseToolChoice(body.tool_choice);
  if (choice && tools.length > 0) request.tool_choice = choice;
  const parallel = field(
    body,
    "parallel_tool_calls",
    (v): v is boolean => typeof v === "boolean",
    "a boolean",
  );
  if (parallel === false) request.parallel_tool_calls = false;
  return {
    request,
    stream: body.stream === true,
    input,
    previousResponseId,
    echo: {
      instructions: instructions ?? null,
      max_output_tokens: maxTokens ?? null,
      temperature,
      top_p: topP,
      tools: Array.isArray(body.tools) ? body.tools : [],
      tool_choice: body.tool_choice ?? "auto",
      parallel_tool_calls: parallel ?? true,
      previous_response_id: previousResponseId,
      text: {
        format: isObject(body.text) && isObject(body.text.format)
          ? body.text.format
          : { type: "text" },
      },
      metadata: isObject(body.metadata) ? body.metadata : {},
    },
  };
}

function inputItems(v: unknown): ChatMessage[] {
  if (typeof v === "string") return [{ role: "user", content: v }];
  if (!Array.isArray(v) || v.length === 0) {
    throw invalidRequest("input must be a string or a non-empty array of items", "input");
  }
  const out: ChatMessage[] = [];
  v.forEach((item, i) => {
    const at = `input[${i}]`;
    if (!isObject(item)) throw invalidRequest(`${at} must be an object`, "input");
    const type = item.type ?? "message";
    if (type === "message") {
      const role = item.role === "developer" ? "system" : item.role;
      if (role !== "user" && role !== "assistant" && role !== "system") {
        throw invalidRequest(`${at}.role must be user, assistant, system or developer`, "input");
      }
      out.push({ role, content: contentText(item.content, at) });
    } else if (type === "function_call") {
      if (!isString(item.call_id) || !isString(item.name) || !isString(item.arguments)) {
        throw invalidRequest(`${at} needs call_id, name and arguments (strings)`, "input");
      }
      const call = {
        id: item.call_id,
        type: "function",
        function: { name: item.name, arguments: item.arguments },
      };
      // Calls of one turn go in one assistant message, as chat templates expect.
      const last = out.at(-1);
      if (last?.role === "assistant" && last.tool_calls) last.tool_calls.push(call);
      else out.push({ role: "assistant", content: null, tool_calls: [call] });
    } else if (type === "function_call_output") {
      if (!isString(item.call_id) || !isString(item.output)) {
        throw invalidRequest(`${at} needs call_id and output (strings)`, "input");
      }
      out.push({ role: "tool", tool_call_id: item.call_id, content: item.output });
    } else {
      throw invalidRequest(
        `${at}: item type ${JSON.stringify(type)} is not supported by this node`,
        "input",
      );
    }
  });
  return out;
}

function contentText(v: unknown, at: string): string {
  if (typeof v === "string") return v;
  if (!Array.isArray(v)) throw invalidRequest(`${at}.content must be a string or parts`, "input");
  return v.map((p, j) => {
    if (isObject(p) && (p.type === "input_text" || p.type === "output_text") && isString(p.text)) {
      return p.text;
    }
    const type = isObject(p) ? JSON.stringify(p.type) : "a non-object";
    throw invalidRequest(
      `${at}.content[${j}]: ${type} content is not supported by this node`,
      "input",
    );
  }).join("");
}

function textFormat(v: unknown): Constraint | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalidRequest("text must be an object", "text");
  const f = v.format;
  if (f === undefined || f === null) return undefined;
  if (!isObject(f)) throw invalidRequest("text.format must be an object", "text");
  if (f.type === "text") return undefined;
  if (f.type === "json_object") return { type: "json_object" };
  if (f.type === "json_schema") {
    if (!isObject(f.schema)) {
      throw invalidRequest("text.format.schema must be a JSON Schema object", "text");
    }
    const c: Constraint = { type: "json_schema", schema: f.schema };
    if (typeof f.strict === "boolean") c.strict = f.strict;
    if (isString(f.name)) c.name = f.name;
    return c;
  }
  throw invalidRequest("text.format.type must be text, json_object or json_schema", "text");
}

function parseTools(v: unknown): ToolSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidRequest("tools must be an array", "tools");
  return v.map((t, i) => {
    if (!isObject(t) || t.type !== "function") {
      const type = isObject(t) ? JSON.stringify(t.type) : "a non-object";
      throw invalidRequest(`tools[${i}]: tool type ${type} is not supported by this node`, "tools");
    }
    if (!isString(t.name) || !/^[a-zA-Z0-9_-]{1,64}$/.test(t.name)) {
      throw invalidRequest(`tools[${i}].name must match ^[a-zA-Z0-9_-]{1,64}$`, "tools");
    }
    const fn: ToolSpec["function"] = { name: t.name };
    if (isString(t.description)) fn.description = t.description;
    if (t.parameters !== undefined && t.parameters !== null) {
      if (!isObject(t.parameters)) {
        throw invalidRequest(`tools[${i}].parameters must be an object`, "tools");
      }
      fn.parameters = t.parameters;
    }
    if (typeof t.strict === "boolean") fn.strict = t.strict;
    return { type: "function", function: fn };
  });
}

function parseToolChoice(v: unknown): ToolChoice | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === "auto" || v === "none" || v === "required") return v;
  if (isObject(v) && v.type === "function" && isString(v.name)) {
    return { type: "function", function: { name: v.name } };
  }
  throw invalidRequest(
    'tool_choice must be "auto", "none", "required" or {"type":"function","name"}',
    "tool_choice",
  );
}
