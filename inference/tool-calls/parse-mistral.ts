/**
 * Mistral calls: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments", "id"?}`; the array
 * is read as it streams, and its calls come out once its closing bracket arrives. Text before
 * the marker is content. An array with one malformed call is text, whole.
 */
import { createJsonScanner, JSON_INVALID, JSON_OPEN, type JsonScanner } from "./json-scan.ts";
import {
  heldFrom,
  isBlank,
  parseJson,
  type ParseStep,
  toCall,
  type ToolCallParser,
} from "./parse-common.ts";
import type { ParsedToolCall } from "./types.ts";

const MARKER = "[TOOL_CALLS]";

/** `prefilled`: the prompt already wrote the marker (the output starts with the array). */
export function mistralParser(names: ReadonlySet<string>, prefilled: boolean): ToolCallParser {
  let buf = "";
  let scanner: JsonScanner | undefined = prefilled ? createJsonScanner() : undefined;
  let markedByPrompt = prefilled;
  let body = "";
  let afterCall = false;

  function run(final: boolean): ParseStep {
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      if (!scanner) {
        const at = buf.indexOf(MARKER);
        const end = at >= 0 ? at : final ? buf.length : heldFrom(buf, [MARKER]);
        const before = buf.slice(0, end);
        if (afterCall && isBlank(before) && at < 0 && !final) break;
        if (!(afterCall && isBlank(before))) {
          step.text += before;
          if (before !== "") afterCall = false;
        }
        buf = buf.slice(at >= 0 ? at + MARKER.length : end);
        if (at < 0) break;
        scanner = createJsonScanner();
        markedByPrompt = false;
        body = "";
        continue;
      }
      const end = scanner.feed(buf);
      if (end === JSON_OPEN && !final) {
        body += buf;
        buf = "";
        break;
      }
      const whole = end >= 0;
      body += whole ? buf.slice(0, end) : buf;
      buf = whole ? buf.slice(end) : "";
      const calls = whole ? callsOf(parseJson(body), names) : undefined;
      if (calls) step.calls.push(...calls);
      else step.text += (markedByPrompt ? "" : MARKER) + body;
      afterCall = calls !== undefined;
      scanner = undefined;
      if (end === JSON_INVALID) {
        // Not JSON after all: what follows is text too.
        step.text += buf;
        buf = "";
      }
      if (!whole) break;
    }
    return step;
  }

  return {
    push(text) {
      buf += text;
      return run(false);
    },
    end: () => run(true),
  };
}

function callsOf(value: unknown, names: ReadonlySet<string>): ParsedToolCall[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const calls = value.map((v) => toCall(v, names, ["arguments", "parameters"]));
  return calls.every((c) => c !== undefined) ? calls as ParsedToolCall[] : undefined;
}
