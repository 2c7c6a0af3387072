/**
 * The generic format's instructions: a template that knows no tools gets them described in the
 * system message, with the one JSON object it must answer with (the answer is constrained to
 * that JSON, plan.ts, so the words matter less than the schema; they still help a real model
 * choose well).
 */
import type { ChatMessage } from "../chat-template.ts";
import { parametersOf } from "./plan.ts";
import type { ToolCallPlan } from "./types.ts";

export function genericToolsText(plan: ToolCallPlan): string {
  const callable = new Set(plan.names);
  const tools = plan.offered.filter((t) => callable.has(t.function.name)).map((t) => ({
    name: t.function.name,
    ...(t.function.description ? { description: t.function.description } : {}),
    parameters: parametersOf(t),
  }));
  const call = '{"tool_calls": [{"name": "<tool name>", "arguments": {<its parameters>}}' +
    (plan.parallel ? ", ...]}" : "]}");
  const how = plan.forced
    ? `Answer with one JSON object that calls ${
      plan.names.length === 1 ? "this tool" : "one of these tools"
    }: ${call}.`
    : `Answer with one JSON object: either ${call} to call ${
      plan.parallel ? "tools" : "one tool"
    }, or {"response": "<your reply>"} to reply to the user.`;
  // One compact line per tool: small models have small contexts.
  return `You can call these tools (each with a JSON Schema of its arguments):\n` +
    `${tools.map((t) => JSON.stringify(t)).join("\n")}\n\n${how}`;
}

/** The instructions joined to the first system message, or a system message of their own. */
export function withToolsSystem(messages: readonly ChatMessage[], text: string): ChatMessage[] {
  const first = messages[0];
  if (first?.role === "system") {
    const own = typeof first.content === "string"
      ? first.content
      : (first.content ?? []).map((p) => p.text ?? "").join("");
    const content = own === "" ? text : `${own}\n\n${text}`;
    return [{ ...first, content }, ...messages.slice(1)];
  }
  return [{ role: "system", content: text }, ...messages];
}
