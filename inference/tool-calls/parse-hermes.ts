/**
 * Hermes / Qwen calls: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, anywhere in
 * the answer, as many as the model writes; the text around them is the message's content. A call
 * the output ends inside is read if its JSON is whole (a forced call's grammar ends right after
 * the JSON; a model may stop before the closing tag).
 */
import { parseJson, toCall, type ToolCallParser } from "./parse-common.ts";
import { markedParser } from "./parse-marked.ts";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

/** `prefilled`: the prompt already opened a call (the output starts inside it). */
export function hermesParser(names: ReadonlySet<string>, prefilled: boolean): ToolCallParser {
  return markedParser(OPEN, prefilled, () => {
    let body = "";
    return (text, final) => {
      body += text;
      const close = body.indexOf(CLOSE);
      if (close < 0 && !final) return undefined;
      const end = close < 0 ? body.length : close + CLOSE.length;
      const call = toCall(parseJson(body.slice(0, close < 0 ? end : close)), names);
      return { calls: call && [call], text: body.slice(0, end), rest: body.slice(end) };
    };
  });
}
