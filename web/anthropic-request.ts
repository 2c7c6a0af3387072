/**
 * An Anthropic Messages body → InferRequest, with 400s that name the field. `system` becomes the
 * first message; text blocks become text; an assistant's `tool_use` blocks become OpenAI-style
 * `tool_calls` and a user's `tool_result` blocks `tool` messages, which is what chat templates
 * read, and its `thinking` blocks (as a node gave them) its `reasoning_content`; `tools` become
 * function tools. What the API defines and a node cannot honour (images,
 * server tools, extended thinking) is refused by name, never dropped.
 */
import type { ChatMessage, InferRequest, ToolChoice, ToolSpec } from "../mesh/mod.ts";
import { type Body, field, intFrom, isBool, isObject, isString, numberIn } from "./body-fields.ts";
import { invalidRequest } from "./http-error.ts";

export interface ParsedMessages {
  request: InferRequest;
  stream: boolean;
}

/** Anthropic's stop_sequences may hold more than OpenAI's 4; a serving node takes 16. */
const MAX_STOP_SEQUENCES = 16;

export function parseMessagesBody(body: Body): ParsedMessages {
  const maxTokens = field(body, "max_tokens", intFrom(1), "an integer ≥ 1");
  if (maxTokens === undefined) throw invalidRequest("max_tokens is required", "max_tokens");
  const thinking = body.thinking;
  if (isObject(thinking) && thinking.type !== "disabled") {
    throw invalidRequest("thinking (extended thinking) is not supported by this node", "thinking");
  }
  const messages = [...system(body.system), ...conversation(body.messages)];
  const stop = field(
    body,
    "stop_sequences",
    (v): v is string[] => Array.isArray(v) && v.every(isString),
    "an array of strings",
  );
  if (stop && stop.length > MAX_STOP_SEQUENCES) {
    throw invalidRequest(`stop_sequences holds at most ${MAX_STOP_SEQUENCES}`, "stop_sequences");
  }
  const request: InferRequest = {
    model: field(body, "model", isString, "a string") ?? "",
    messages,
    params: {
      max_tokens: maxTokens,
      // Anthropic's defaults: temperature 1, no nucleus or top-k cut, no penalties.
      temperature: field(body, "temperature", numberIn(0, 1), "a number from 0 to 1") ?? 1,
      top_p: field(body, "top_p", numberIn(0, 1), "a number from 0 to 1") ?? 1,
      top_k: field(body, "top_k", intFrom(0), "an integer ≥ 0") ?? 0,
      min_p: 0,
      repeat_penalty: 1,
      ...(stop && stop.length > 0 ? { stop } : {}),
    },
  };
  const tools = parseTools(body.tools);
  if (tools.length > 0) {
    request.tools = tools;
    const choice = parseToolChoice(body.tool_choice);
    if (choice) {
      request.tool_choice = choice.choice;
      if (choice.parallel === false) request.parallel_tool_calls = false;
    }
  } else if (body.tool_choice !== undefined && body.tool_choice !== null) {
    const t = isObject(body.tool_choice) ? body.tool_choice.type : undefined;
    if (t !== "none" && t !== "auto") {
      throw invalidRequest("tool_choice names a tool but tools is empty", "tool_choice");
    }
  }
  return { request, stream: field(body, "stream", isBool, "a boolean") ?? false };
}

function system(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return v === "" ? [] : [{ role: "system", content: v }];
  if (!Array.isArray(v)) throw invalidRequest("system must be a string or text blocks", "system");
  const text = v.map((b, i) => {
    if (!isObject(b) || b.type !== "text" || typeof b.text !== "string") {
      throw invalidRequest(`system[${i}] must be a text block`, "system");
    }
    return b.text;
  }).join("\n\n");
  return text === "" ? [] : [{ role: "system", content: text }];
}

function conversation(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw invalidRequest("messages must be a non-empty array", "messages");
  }
  const out: ChatMessage[] = [];
  v.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw invalidRequest(`${at} must be an object`, "messages");
    if (m.role !== "user" && m.role !== "assistant") {
      throw invalidRequest(`${at}.role must be user or assistant`, "messages");
    }
    if (typeof m.content === "string") {
      out.push({ role: m.role, content: m.content });
      return;
    }
    if (!Array.isArray(m.content)) {
      throw invalidRequest(`${at}.content must be a string or an array of blocks`, "messages");
    }
    out.push(...blocks(m.role, m.content, at));
  });
  return out;
}

/** One turn's blocks as chat messages: tool results first (they answer the last turn's calls). */
function blocks(role: "user" | "assistant", list: unknown[], at: string): ChatMessage[] {
  const texts: string[] = [];
  const thoughts: string[] = [];
  const toolResults: ChatMessage[] = [];
  const toolCalls: unknown[] = [];
  list.forEach((b, j) => {
    const where = `${at}.content[${j}]`;
    if (!isObject(b)) throw invalidRequest(`${where} must be a block object`, "messages");
    switch (b.type) {
      case "text":
        if (typeof b.text !== "string") {
          throw invalidRequest(`${where}.text must be a string`, "messages");
        }
        texts.push(b.text);
        return;
      case "tool_use":
        if (role !== "assistant") {
          throw invalidRequest(`${where}: tool_use belongs to assistant turns`, "messages");
        }
        if (typeof b.id !== "string" || typeof b.name !== "string" || !isObject(b.input)) {
          throw invalidRequest(`${where} must have an id, a name and an input object`, "messages");
        }
        toolCalls.push({
          id: b.id,
          type: "function",
          function: { name: b.name, arguments: JSON.stringify(b.input) },
        });
        return;
      case "tool_result":
        if (role !== "user") {
          throw invalidRequest(`${where}: tool_result belongs to user turns`, "messages");
        }
        if (typeof b.tool_use_id !== "string") {
          throw invalidRequest(`${where}.tool_use_id must be a string`, "messages");
        }
        toolResults.push({
          role: "tool",
          tool_call_id: b.tool_use_id,
          content: resultText(b, where),
        });
        return;
      case "thinking":
      case "redacted_thinking":
        // Sent back as this node gave it: its reasoning (gpt-oss's template shows it).
        if (role !== "assistant") {
          throw invalidRequest(`${where}: ${b.type} belongs to assistant turns`, "messages");
        }
        if (b.type === "thinking") {
          if (typeof b.thinking !== "string") {
            throw invalidRequest(`${where}.thinking must be a string`, "messages");
          }
          thoughts.push(b.thinking);
        }
        return;
      case "image":
      case "document":
        throw invalidRequest(
          `${where}: ${b.type} content is not supported by this node`,
          "messages",
        );
      default:
        throw invalidRequest(`${where}: unknown block type ${JSON.stringify(b.type)}`, "messages");
    }
  });
  const text = texts.join("\n\n");
  if (role === "assistant") {
    const m: ChatMessage = { role, content: text === "" && toolCalls.length > 0 ? null : text };
    if (toolCalls.length > 0) m.tool_calls = toolCalls;
    const thought = thoughts.join("\n\n");
    if (thought !== "") m.reasoning_content = thought;
    return [m];
  }
  return [
    ...toolResults,
    ...(text !== "" || toolResults.length === 0 ? [{ role, content: text }] : []),
  ];
}

function resultText(b: Body, where: string): string {
  const prefix = b.is_error === true ? "Error: " : "";
  if (typeof b.content === "string") return prefix + b.content;
  if (b.content === undefined) return prefix;
  if (!Array.isArray(b.content)) {
    throw invalidRequest(`${where}.content must be a string or text blocks`, "messages");
  }
  return prefix + b.content.map((c, k) => {
    if (!isObject(c) || c.type !== "text" || typeof c.text !== "string") {
      throw invalidRequest(`${where}.content[${k}]: only text results are supported`, "messages");
    }
    return c.text;
  }).join("\n");
}

function parseTools(v: unknown): ToolSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidRequest("tools must be an array", "tools");
  return v.map((t, i) => {
    if (!isObject(t)) throw invalidRequest(`tools[${i}] must be an object`, "tools");
    if (t.type !== undefined && t.type !== "custom") {
      throw invalidRequest(
        `tools[${i}]: server tool ${JSON.stringify(t.type)} is not supported`,
        "tools",
      );
    }
    if (typeof t.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(t.name)) {
      throw invalidRequest(`tools[${i}].name must match ^[a-zA-Z0-9_-]{1,64}$`, "tools");
    }
    if (!isObject(t.input_schema)) {
      throw invalidRequest(`tools[${i}].input_schema must be a JSON Schema object`, "tools");
    }
    const fn: ToolSpec["function"] = { name: t.name, parameters: t.input_schema };
    if (typeof t.description === "string") fn.description = t.description;
    return { type: "function", function: fn };
  });
}

function parseToolChoice(v: unknown): { choice: ToolChoice; parallel?: boolean } | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalidRequest("tool_choice must be an object", "tool_choice");
  const parallel = v.disable_parallel_tool_use === true ? false : undefined;
  switch (v.type) {
    case "auto":
      return { choice: "auto", parallel };
    case "any":
      return { choice: "required", parallel };
    case "none":
      return { choice: "none" };
    case "tool":
      if (typeof v.name !== "string") {
        throw invalidRequest("tool_choice.name must be a string", "tool_choice");
      }
      return { choice: { type: "function", function: { name: v.name } }, parallel };
    default:
      throw invalidRequest("tool_choice.type must be auto, any, tool or none", "tool_choice");
  }
}
