/**
 * Formats whose calls stand in the text after a marker (Hermes' `<tool_call>`, Mistral's
 * `[TOOL_CALLS]`): the text around them is content, blank text between calls is not, and a
 * malformed call is released as the text it was, marker and all.
 */
import { heldFrom, type ParseStep, streamingParser, type ToolCallParser } from "./parse-common.ts";
import type { ParsedToolCall } from "./types.ts";

/** What a format made of the text after one marker. */
export interface MarkedCall {
  /** The calls read; undefined when the text is malformed. */
  calls: ParsedToolCall[] | undefined;
  /** The call's text, as written after the marker. */
  text: string;
  /** What follows the call. */
  rest: string;
}

/**
 * Reads the text after one marker as it streams: undefined while the call is open (all of the
 * text taken), else what it was. `final`: the output ended.
 */
export type MarkedCallReader = (text: string, final: boolean) => MarkedCall | undefined;

/**
 * `prefilled`: the prompt already wrote the marker (the output starts inside a call), so a
 * malformed first call is released without it.
 */
export function markedParser(
  marker: string,
  prefilled: boolean,
  readerOfCall: () => MarkedCallReader,
): ToolCallParser {
  let buf = "";
  /** Set while inside a call. */
  let readCall = prefilled ? readerOfCall() : undefined;
  let markedByPrompt = prefilled;
  let afterCall = false;

  return streamingParser((text, final) => {
    buf += text;
    const step: ParseStep = { text: "", calls: [] };
    while (true) {
      if (!readCall) {
        const scan = scanToMarker(buf, marker, final, afterCall);
        step.text += scan.text;
        if (scan.text !== "") afterCall = false;
        buf = scan.rest;
        if (!scan.found) break;
        readCall = readerOfCall();
        markedByPrompt = false;
        continue;
      }
      const call = readCall(buf, final);
      buf = call?.rest ?? "";
      if (call === undefined) break;
      if (call.calls) step.calls.push(...call.calls);
      else step.text += (markedByPrompt ? "" : marker) + call.text;
      afterCall = call.calls !== undefined;
      readCall = undefined;
    }
    return step;
  });
}

/**
 * Reads `buf` up to `marker`: the content before it (or all that cannot start one), and what
 * stays to read (after the marker, else the held-back end). Blank text right after a call is no
 * content: it is dropped once the marker or the end comes, and held until then (text after it
 * would make it content).
 */
function scanToMarker(
  buf: string,
  marker: string,
  final: boolean,
  afterCall: boolean,
): { text: string; rest: string; found: boolean } {
  const at = buf.indexOf(marker);
  const end = at >= 0 ? at : final ? buf.length : heldFrom(buf, [marker]);
  const before = buf.slice(0, end);
  const betweenCalls = afterCall && before.trim() === "";
  if (betweenCalls && at < 0 && !final) return { text: "", rest: buf, found: false };
  return {
    text: betweenCalls ? "" : before,
    rest: buf.slice(at >= 0 ? at + marker.length : end),
    found: at >= 0,
  };
}
