/**
 * An assistant's reasoning (`reasoning_content`, as this node gave it) is what gpt-oss's template
 * calls `thinking`: it shows it before a call when no answer followed yet, and refuses a call's
 * message with both content and thinking, so there the content goes (as llama.cpp's server does).
 *
 * gpt-oss's template renders one call per assistant message (`tool_calls[0]`) and names each
 * tool result after the last call rendered before it. So an assistant message with several
 * calls becomes one message per call, each followed by its result (matched by tool_call_id
 * among the results that follow), as the model itself writes them: call, result, call, result.
 */
import type { ChatMessage } from "../chat-template.ts";

export function harmonyHistory(messages: readonly ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = withThinking(messages[i]);
    const calls = m.tool_calls;
    if (calls === undefined || calls.length < 2) {
      out.push(m);
      continue;
    }
    let end = i + 1;
    while (end < messages.length && messages[end].role === "tool") end++;
    const results = messages.slice(i + 1, end);
    calls.forEach((call, k) => {
      out.push({ ...m, content: k === 0 ? m.content : null, tool_calls: [call] });
      const id = (call as { id?: unknown }).id;
      const at = results.findIndex((r) => id !== undefined && r.tool_call_id === id);
      if (at >= 0) out.push(...results.splice(at, 1));
    });
    out.push(...results);
    i = end - 1;
  }
  return out;
}

function withThinking(m: ChatMessage): ChatMessage {
  const { reasoning_content: thinking, ...rest } = m;
  if (typeof thinking !== "string" || thinking === "") return m;
  const out: ChatMessage & { thinking: string } = { ...rest, thinking };
  if (out.tool_calls !== undefined && out.tool_calls.length > 0) out.content = null;
  return out;
}
