/**
 * Llama 3.x calls: the answer is the call, `{"name": …, "parameters": {…}}` (some write
 * `"arguments"`, or `"type": "function"` first), perhaps after `<|python_tag|>`, perhaps several
 * separated by `;` or whitespace; or, after `<|python_tag|>`, a built-in tool's
 * `name.call(key="value", …)`. As llama.cpp reads it, only the start of the answer can open a
 * call: an answer that starts otherwise is text, and is let through at once.
 */
import {
  type JsonReader,
  jsonReader,
  parseJson,
  type ParseStep,
  startsWithParts,
  streamingParser,
  toCall,
  type ToolCallParser,
} from "./parse-common.ts";
import type { ParsedToolCall } from "./types.ts";

const TAG = "<|python_tag|>";
const ARGUMENT_KEYS = ["parameters", "arguments"];

type State = "start" | "json" | "between" | "builtin" | "text";

export function llama3Parser(names: ReadonlySet<string>): ToolCallParser {
  let buf = "";
  let state: State = "start";
  let readJson: JsonReader = jsonReader();

  function beginJson(text: string): void {
    buf = text;
    readJson = jsonReader();
    state = "json";
  }

  return streamingParser((text, final) => {
    buf += text;
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      switch (state) {
        case "text":
          step.text += buf;
          buf = "";
          return step;
        case "start": {
          const tag = startsWithParts(buf, [TAG]);
          if (tag.match === "maybe" && !final) return step;
          const rest = tag.match === "yes" ? buf.slice(tag.end) : buf;
          const opens = [
            startsWithParts(rest, ["{", '"name"']),
            startsWithParts(rest, ["{", '"type"']),
          ];
          if (opens.some((o) => o.match === "yes")) {
            beginJson(rest.slice(rest.indexOf("{")));
          } else if (opens.some((o) => o.match === "maybe") && !final) {
            return step;
          } else if (tag.match === "yes" && /^\s*\w/.test(rest)) {
            buf = rest;
            state = "builtin";
          } else state = "text";
          continue;
        }
        case "json": {
          const json = readJson(buf, final);
          buf = json?.rest ?? "";
          if (json === undefined) return step;
          const call = toCall(json.value, names, ARGUMENT_KEYS);
          if (call) {
            step.calls.push(call);
            state = "between";
          } else {
            step.text += json.body;
            state = "text";
          }
          continue;
        }
        case "between": {
          // Separators between calls (and after the last) are not content.
          const rest = buf.replace(/^[\s;]+/, "");
          if (rest === "") {
            buf = "";
            return step;
          }
          const tag = startsWithParts(rest, [TAG]);
          if (rest.startsWith("{")) beginJson(rest);
          else if (tag.match === "yes") buf = rest.slice(tag.end);
          else if (tag.match === "maybe" && !final) {
            buf = rest;
            return step;
          } else {
            buf = rest;
            state = "text";
          }
          continue;
        }
        case "builtin": {
          if (!final) return step; // its end is the answer's end
          const call = builtinCall(buf, names);
          if (call) step.calls.push(call);
          else step.text += buf;
          buf = "";
          return step;
        }
      }
    }
  });
}

/** `name.call(key=JSON value, …)` → a call of `name` with those arguments. */
function builtinCall(text: string, names: ReadonlySet<string>): ParsedToolCall | undefined {
  const m = /^\s*(\w+)\.call\(([\s\S]*)\)\s*$/.exec(text);
  if (!m) return undefined;
  const args: Record<string, unknown> = {};
  let rest = m[2].trim();
  while (rest !== "") {
    const key = /^(\w+)\s*=\s*/.exec(rest);
    if (!key) return undefined;
    rest = rest.slice(key[0].length);
    const value = /^("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      rest,
    );
    const parsed = value ? parseJson(value[1]) : undefined;
    if (!value || parsed === undefined) return undefined;
    args[key[1]] = parsed;
    rest = rest.slice(value[0].length).replace(/^\s*,\s*/, "").trimStart();
  }
  return toCall({ name: m[1], arguments: args }, names, ["arguments"]);
}
