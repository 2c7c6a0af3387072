/**
 * A chat's past tool calls and tool results, shaped for the template that renders them. OpenAI
 * sends a call's arguments as JSON text; templates print them with `tojson`, so they get the
 * object (as llama.cpp's server passes them). Mistral's templates refuse ids that are not 9
 * letters or digits, so ids are mapped to such, the same way in a call and in its result; Llama
 * 3.x's refuse several calls in one turn, so each goes in a turn of its own. The generic format's
 * templates know no tools: calls are written as the JSON the model is asked to answer with, and
 * results become user turns.
 */
import type { ChatMessage } from "../chat-template.ts";
import { harmonyHistory } from "./history-harmony.ts";
import type { ToolFormat } from "./types.ts";

interface HistoryCall {
  id?: unknown;
  type?: unknown;
  function?: { name?: unknown; arguments?: unknown };
}

export function historyFor(format: ToolFormat, messages: readonly ChatMessage[]): ChatMessage[] {
  if (!messages.some((m) => m.tool_calls !== undefined || m.role === "tool")) return [...messages];
  if (format === "generic") return genericHistory(messages);
  if (format === "harmony") messages = harmonyHistory(messages);
  const out: ChatMessage[] = [];
  for (const m of messages) {
    if (m.role === "tool" && format === "mistral" && typeof m.tool_call_id === "string") {
      out.push({ ...m, tool_call_id: mistralId(m.tool_call_id) });
      continue;
    }
    if (m.tool_calls === undefined) {
      out.push(m);
      continue;
    }
    const calls = (m.tool_calls as HistoryCall[]).map((c) => templateCall(c, format));
    if (format === "llama3" && calls.length > 1) {
      calls.forEach((c, i) =>
        out.push({ ...m, content: i === 0 ? m.content : null, tool_calls: [c] })
      );
    } else {
      out.push({ ...m, tool_calls: calls });
    }
  }
  return out;
}

function templateCall(call: HistoryCall, format: ToolFormat): HistoryCall {
  const fn = call.function ?? {};
  const out: HistoryCall = {
    ...call,
    type: call.type ?? "function",
    function: { ...fn, arguments: argumentsObject(fn.arguments) },
  };
  if (format === "mistral") out.id = mistralId(typeof call.id === "string" ? call.id : "");
  return out;
}

/** JSON text of an object → the object; anything else stays as it is. */
function argumentsObject(args: unknown): unknown {
  if (typeof args !== "string") return args;
  try {
    const parsed = JSON.parse(args);
    return parsed !== null && typeof parsed === "object" ? parsed : args;
  } catch {
    return args;
  }
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 9 letters or digits: the id itself when it is such, else a hash of it (FNV-1a, 2 rounds). */
export function mistralId(id: string): string {
  if (/^[a-zA-Z0-9]{9}$/.test(id)) return id;
  let out = "";
  let h = 0x811c9dc5;
  for (let round = 0; out.length < 9; round++) {
    for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ round, 0x01000193) >>> 0;
    for (let k = 0; k < 5 && out.length < 9; k++) {
      out += ALNUM[h % ALNUM.length];
      h = Math.floor(h / ALNUM.length);
    }
  }
  return out;
}

/**
 * The generic format's history: an assistant's calls as the JSON answer it would have given, and
 * each run of tool results as one user turn (templates that insist on alternating roles accept
 * it), one `{"tool_response": …}` line per result.
 */
function genericHistory(messages: readonly ChatMessage[]): ChatMessage[] {
  const names = new Map<string, string>();
  const out: ChatMessage[] = [];
  let results: string[] | undefined;
  for (const m of messages) {
    if (m.role === "tool") {
      const name = typeof m.tool_call_id === "string" ? names.get(m.tool_call_id) : undefined;
      const response = { name, tool_call_id: m.tool_call_id, content: textOf(m.content) };
      const line = JSON.stringify({ tool_response: response });
      if (results) results.push(line);
      else {
        results = [line];
        out.push({ role: "user", content: "" });
      }
      out[out.length - 1].content = results.join("\n");
      continue;
    }
    results = undefined;
    if (m.tool_calls === undefined) {
      out.push(m);
      continue;
    }
    const calls = (m.tool_calls as HistoryCall[]).map((c) => {
      const name = typeof c.function?.name === "string" ? c.function.name : "";
      if (typeof c.id === "string") names.set(c.id, name);
      return { name, arguments: argumentsObject(c.function?.arguments) };
    });
    const json = JSON.stringify({ tool_calls: calls });
    const text = textOf(m.content);
    out.push({ role: m.role, content: text === "" ? json : `${text}\n${json}` });
  }
  return out;
}

function textOf(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => p.text ?? "").join("");
  return "";
}
