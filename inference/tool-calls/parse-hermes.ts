/**
 * Hermes / Qwen calls: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, anywhere in
 * the answer, as many as the model writes; the text around them is the message's content. A call
 * the output ends inside is read if its JSON is whole (a forced call's grammar ends right after
 * the JSON; a model may stop before the closing tag).
 */
import {
  parseJson,
  type ParseStep,
  scanToMarker,
  streamingParser,
  toCall,
  type ToolCallParser,
} from "./parse-common.ts";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

/** `prefilled`: the prompt already opened a call (the output starts inside it). */
export function hermesParser(names: ReadonlySet<string>, prefilled: boolean): ToolCallParser {
  let buf = "";
  let inCall = prefilled;
  let openedByPrompt = prefilled;
  let afterCall = false;

  return streamingParser((text, final) => {
    buf += text;
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      if (!inCall) {
        const scan = scanToMarker(buf, OPEN, final, afterCall);
        step.text += scan.text;
        if (scan.text !== "") afterCall = false;
        buf = scan.rest;
        if (!scan.found) break;
        inCall = true;
        openedByPrompt = false;
        continue;
      }
      const close = buf.indexOf(CLOSE);
      if (close < 0 && !final) break;
      const body = close < 0 ? buf : buf.slice(0, close);
      const call = toCall(parseJson(body), names);
      if (call) {
        step.calls.push(call);
        afterCall = true;
      } else {
        step.text += (openedByPrompt ? "" : OPEN) + body + (close < 0 ? "" : CLOSE);
        afterCall = false;
      }
      buf = close < 0 ? "" : buf.slice(close + CLOSE.length);
      inCall = false;
      if (close < 0) break;
    }
    return step;
  });
}
