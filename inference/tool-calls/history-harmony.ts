/**
 * gpt-oss's template renders one call per assistant message (`tool_calls[0]`) and names each
 * tool result after the last call rendered before it. So an assistant message with several
 * calls becomes one message per call, each followed by its result (matched by tool_call_id
 * among the results that follow), as the model itself writes them: call, result, call, result.
 */
import type { ChatMessage } from "../chat-template.ts";

export function harmonyHistory(messages: readonly ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
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
