/**
 * The generic format: the answer is one JSON object, `{"tool_calls": [{"name", "arguments"}, …]}`
 * or `{"response": "…"}` (also read: llama.cpp's `{"tool_call": {…}}` and a bare
 * `{"name", "arguments"}`). A response's string streams out as it is decoded, so a reply is not
 * held to the end; calls come out when the object closes. An answer that is not such an object
 * (a model the grammar did not hold, e.g. on a node without constrained sampling) is text.
 */
import {
  isObject,
  type JsonReader,
  jsonReader,
  parseJson,
  type ParseStep,
  startsWithParts,
  streamingParser,
  toCalls,
  type ToolCallParser,
} from "./parse-common.ts";
import type { ParsedToolCall } from "./types.ts";

type State = "start" | "response" | "object" | "done" | "text";

const RESPONSE_OPENING = ["{", '"response"', ":", '"'];

export function genericParser(names: ReadonlySet<string>): ToolCallParser {
  let buf = "";
  let state: State = "start";
  let readJson: JsonReader = jsonReader();

  return streamingParser((text, final) => {
    buf += text;
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      switch (state) {
        case "text":
          step.text += buf;
          buf = "";
          return step;
        case "done": // what follows the object is not part of the answer
          buf = "";
          return step;
        case "start": {
          const response = startsWithParts(buf, RESPONSE_OPENING);
          const first = buf.trimStart();
          if (response.match === "yes") {
            buf = buf.slice(response.end);
            state = "response";
          } else if (first === "" || (response.match === "maybe" && !final)) {
            if (!final) return step;
            state = "text";
          } else if (first[0] === "{") {
            readJson = jsonReader();
            state = "object";
          } else state = "text";
          continue;
        }
        case "response": {
          const s = decodeStringStart(buf);
          step.text += s.text;
          buf = buf.slice(s.read);
          if (s.closed) state = "done";
          else if (final) state = "text"; // a cut-off reply: what is left as it was
          else return step;
          continue;
        }
        case "object": {
          const json = readJson(buf, final);
          buf = json?.rest ?? "";
          if (json === undefined) return step;
          const answer = answerOf(json.value, names);
          if (answer === undefined) {
            step.text += json.body;
            state = "text";
          } else {
            if (typeof answer === "string") step.text += answer;
            else step.calls.push(...answer);
            state = "done";
          }
          continue;
        }
      }
    }
  });
}

/** The answer's calls, or its reply as text; undefined when it is neither. */
function answerOf(
  value: unknown,
  names: ReadonlySet<string>,
): ParsedToolCall[] | string | undefined {
  if (!isObject(value)) return undefined;
  const read = (items: unknown[]) => toCalls(items, names);
  if (Array.isArray(value.tool_calls)) return read(value.tool_calls);
  if (value.tool_call !== undefined) return read([value.tool_call]);
  if (value.response !== undefined) {
    return typeof value.response === "string" ? value.response : JSON.stringify(value.response);
  }
  if (value.name !== undefined) return read([value]);
  return undefined;
}

/**
 * Decodes the start of a JSON string's contents (after its opening quote): the text so far, how
 * many characters were read, and whether the closing quote came. An escape cut off by the end,
 * and a high surrogate whose low half has not come, wait for more.
 */
export function decodeStringStart(s: string): { text: string; read: number; closed: boolean } {
  let text = "";
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') return { text, read: i + 1, closed: true };
    if (c !== "\\") {
      text += c;
      i++;
      continue;
    }
    if (i + 1 >= s.length) break;
    if (s[i + 1] !== "u") {
      const decoded = parseJson(`"\\${s[i + 1]}"`);
      text += typeof decoded === "string" ? decoded : s[i + 1];
      i += 2;
      continue;
    }
    const unit = hexUnit(s, i);
    if (unit === undefined) break;
    if (unit >= 0xd800 && unit < 0xdc00) {
      if (i + 12 > s.length) break;
      const low = s[i + 6] === "\\" && s[i + 7] === "u" ? hexUnit(s, i + 6) : undefined;
      if (low !== undefined && low >= 0xdc00 && low < 0xe000) {
        text += String.fromCharCode(unit, low);
        i += 12;
        continue;
      }
    }
    text += String.fromCharCode(unit);
    i += 6;
  }
  return { text, read: i, closed: false };
}

function hexUnit(s: string, at: number): number | undefined {
  const hex = s.slice(at + 2, at + 6);
  return /^[0-9a-fA-F]{4}$/.test(hex) ? parseInt(hex, 16) : undefined;
}
