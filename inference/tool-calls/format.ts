/**
 * Which tool-call format a chat template speaks, read from the template's own text: each family
 * writes its call syntax into the template (to show past calls to the model), so the syntax is
 * the mark. The same marks llama.cpp's server looks for; anything else is the generic format.
 */
import type { ToolFormat } from "./types.ts";

export function detectToolFormat(template: string | undefined): ToolFormat {
  if (!template) return "generic";
  // gpt-oss's harmony: every message of its template has a channel.
  if (template.includes("<|channel|>") && template.includes("<|message|>")) return "harmony";
  if (template.includes("<tool_call>")) return "hermes";
  // Llama 3.1–3.3 show tool results under an `ipython` header; 3.1 also has <|python_tag|>.
  if (template.includes("<|start_header_id|>ipython<|end_header_id|>")) return "llama3";
  if (template.includes("[TOOL_CALLS]")) return "mistral";
  return "generic";
}

/** Texts that open a call in each format, as the model may write them as single special tokens. */
export const TOOL_MARKERS: readonly string[] = [
  "<tool_call>",
  "</tool_call>",
  "<|python_tag|>",
  "[TOOL_CALLS]",
];
