/**
 * Hermes / Qwen calls: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, anywhere in
 * the answer, as many as the model writes; the text around them is the message's content. A call
 * the output ends inside is read if its JSON is whole (a forced call's grammar ends right after
 * the JSON; a model may stop before the closing tag).
 */
import {
  heldFrom,
  isBlank,
  parseJson,
  type ParseStep,
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

  function run(final: boolean): ParseStep {
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      if (!inCall) {
        const at = buf.indexOf(OPEN);
        const end = at >= 0 ? at : final ? buf.length : heldFrom(buf, [OPEN]);
        const before = buf.slice(0, end);
        // Whitespace between calls (or after the last) is not content.
        if (afterCall && isBlank(before) && at < 0 && !final) break;
        if (!(afterCall && isBlank(before))) {
          step.text += before;
          if (before !== "") afterCall = false;
        }
        if (at < 0) {
          buf = buf.slice(end);
          if (final) buf = "";
          break;
        }
        buf = buf.slice(at + OPEN.length);
        inCall = true;
        openedByPrompt = false;
        continue;
      }
      const close = buf.indexOf(CLOSE);
      if (close < 0 && !final) break;
      const body = close < 0 ? buf : buf.slice(0, close);
      const call = toCall(parseJson(body), names, ["arguments", "parameters"]);
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
  }

  return {
    push(text) {
      buf += text;
      return run(false);
    },
    end: () => run(true),
  };
}
