/**
 * A chat with tools as the model reads it: through its own template where the template knows
 * tools (the tools in its `tools` variable, past calls and results in its own syntax), else the
 * generic format's system message; then the plan's prefill, which opens a forced call.
 */
import { renderChat, type RenderChatOptions, strftime } from "../chat-template.ts";
import { detectToolFormat } from "./format.ts";
import { genericToolsText, withToolsSystem } from "./generic-prompt.ts";
import { historyFor } from "./history.ts";
import { toolCallPlan } from "./plan.ts";
import type { ToolFunctionSpec, ToolRequest } from "./types.ts";

export type RenderToolChatOptions = Omit<RenderChatOptions, "tools"> & ToolRequest;

export function renderToolChat(options: RenderToolChatOptions): string {
  const { tools: _tools, tool_choice: _choice, parallel_tool_calls: _parallel, ...base } = options;
  const format = detectToolFormat(options.template);
  const plan = toolCallPlan(options.template, options);
  const history = historyFor(format, options.messages);
  const render: RenderChatOptions = { ...base, messages: history };
  if (format === "generic") {
    if (plan) render.messages = withToolsSystem(history, genericToolsText(plan));
  } else {
    if (plan) render.tools = format === "harmony" ? plan.offered.map(described) : plan.offered;
    if (format === "llama3") {
      // As llama.cpp's server: the tools in the system turn, not folded into the first user turn
      // (which may be long gone in a long chat), and today's date.
      const now = (options.now ?? (() => new Date()))();
      render.context = {
        tools_in_user_message: false,
        date_string: strftime(now, "%d %b %Y"),
        ...options.context,
      };
    }
  }
  const text = renderChat(render);
  return plan && options.addGenerationPrompt !== false ? text + plan.prefill : text;
}

/** gpt-oss's template prints `"// " + description` for every tool, failing on a missing one. */
function described(tool: ToolFunctionSpec): ToolFunctionSpec {
  return tool.function.description === undefined
    ? { ...tool, function: { ...tool.function, description: "" } }
    : tool;
}
