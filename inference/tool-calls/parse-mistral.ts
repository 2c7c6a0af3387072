/**
 * Mistral calls: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments", "id"?}`; the array
 * is read as it streams, and its calls come out once its closing bracket arrives. Text before
 * the marker is content. An array with one malformed call is text, whole.
 */
import { jsonReader, toCalls, type ToolCallParser } from "./parse-common.ts";
import { markedParser } from "./parse-marked.ts";
import type { ParsedToolCall } from "./types.ts";

const MARKER = "[TOOL_CALLS]";

/** `prefilled`: the prompt already wrote the marker (the output starts with the array). */
export function mistralParser(names: ReadonlySet<string>, prefilled: boolean): ToolCallParser {
  return markedParser(MARKER, prefilled, () => {
    const readJson = jsonReader();
    return (text, final) => {
      const json = readJson(text, final);
      return json && { calls: callsOf(json.value, names), text: json.body, rest: json.rest };
    };
  });
}

function callsOf(value: unknown, names: ReadonlySet<string>): ParsedToolCall[] | undefined {
  return Array.isArray(value) ? toCalls(value, names) : undefined;
}
