/**
 * inference/'s second face, for code that needs text but no engine: GGUF metadata values,
 * tokenizers and chat templates. mesh/'s prompt worker and what it imports use it: through
 * inference/mod.ts the worker would load the engines (WebGPU, WASM) it never uses, and Deno's
 * type check of the worker fails on the WebGPU code (measured: mesh/prompt-encoder.test.ts).
 * Re-exports only; inference/mod.ts exports all of this list too (`export *`).
 */
export type { GgufValue } from "./gguf.ts";
export { tokenizerFromMetadata } from "./tokenizer/mod.ts";
export type { Tokenizer } from "./tokenizer/mod.ts";
export { CHATML_TEMPLATE, renderChat, templateParses } from "./chat-template.ts";
export type { ChatMessage } from "./chat-template.ts";
export {
  createToolCallParser,
  detectToolFormat,
  HARMONY_MARKERS,
  renderToolChat,
  TOOL_MARKERS,
  toolCallPlan,
} from "./tool-calls/mod.ts";
export type {
  ParsedToolCall,
  ParseStep,
  ToolCallParser,
  ToolCallPlan,
  ToolFormat,
} from "./tool-calls/mod.ts";
