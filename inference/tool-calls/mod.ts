/** Tool calling through a model's own chat template: rendering, the plan, parsing calls back. */
export { detectToolFormat, TOOL_MARKERS } from "./format.ts";
export { toolCallPlan } from "./plan.ts";
export { renderToolChat } from "./render.ts";
export type { RenderToolChatOptions } from "./render.ts";
export { createToolCallParser } from "./parse.ts";
export { HARMONY_MARKERS } from "./parse-harmony.ts";
export type { ParseStep, ToolCallParser } from "./parse.ts";
export type {
  ParsedToolCall,
  ToolCallPlan,
  ToolChoiceSpec,
  ToolFormat,
  ToolFunctionSpec,
  ToolRequest,
} from "./types.ts";
