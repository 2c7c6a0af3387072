/**
 * Mistral calls: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments", "id"?}`; the array
 * is read as it streams, and its calls come out once its closing bracket arrives. Text before
 * the marker is content. An array with one malformed call is text, whole.
 */
import {
  type JsonReader,
  jsonReader,
  type ParseStep,
  scanToMarker,
  streamingParser,
  toCalls,
  type ToolCallParser,
} from "./parse-common.ts";
import type { ParsedToolCall } from "./types.ts";

const MARKER = "[TOOL_CALLS]";

/** `prefilled`: the prompt already wrote the marker (the output starts with the array). */
export function mistralParser(names: ReadonlySet<string>, prefilled: boolean): ToolCallParser {
  let buf = "";
  /** Set while inside the array. */
  let readJson: JsonReader | undefined = prefilled ? jsonReader() : undefined;
  let markedByPrompt = prefilled;
  let afterCall = false;

  return streamingParser((text, final) => {
    buf += text;
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      if (!readJson) {
        const scan = scanToMarker(buf, MARKER, final, afterCall);
        step.text += scan.text;
        if (scan.text !== "") afterCall = false;
        buf = scan.rest;
        if (!scan.found) break;
        readJson = jsonReader();
        markedByPrompt = false;
        continue;
      }
      const json = readJson(buf, final);
      buf = json?.rest ?? "";
      if (json === undefined) break;
      const calls = callsOf(json.value, names);
      if (calls) step.calls.push(...calls);
      else step.text += (markedByPrompt ? "" : MARKER) + json.body;
      afterCall = calls !== undefined;
      readJson = undefined;
    }
    return step;
  });
}

function callsOf(value: unknown, names: ReadonlySet<string>): ParsedToolCall[] | undefined {
  return Array.isArray(value) ? toCalls(value, names) : undefined;
}
