/**
 * What the per-format parsers share: their streaming face, turning a parsed JSON value into a
 * call (or refusing it, so it stays text), and holding back a text's end that may be the start
 * of a marker.
 */
import type { ParsedToolCall } from "./types.ts";

/** What one piece of output (or the end) released: plain text, and calls now whole. */
export interface ParseStep {
  text: string;
  calls: ParsedToolCall[];
}

/**
 * Reads a model's output as it streams. Text that may belong to a call is held back until the
 * call is whole; a call that turns out malformed (not JSON, an unknown name, arguments that are
 * no object) is released as the text it was.
 */
export interface ToolCallParser {
  push(text: string): ParseStep;
  /** The output ended: whatever was held is released, a call left open parsed if it is whole. */
  end(): ParseStep;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * `{"name", <argument key>}` (or OpenAI's `{"function": {…}}`) → a call, when the name is one
 * that may be called and the arguments are an object or JSON text of one; else undefined.
 */
export function toCall(
  value: unknown,
  names: ReadonlySet<string>,
  argumentKeys: readonly string[],
): ParsedToolCall | undefined {
  if (!isObject(value)) return undefined;
  const fn = isObject(value.function) ? value.function : value;
  const name = fn.name;
  if (typeof name !== "string" || !names.has(name)) return undefined;
  let args = argumentKeys.map((k) => fn[k]).find((v) => v !== undefined) ?? {};
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch {
      return undefined;
    }
  }
  return isObject(args) ? { name, arguments: JSON.stringify(args) } : undefined;
}

/** JSON.parse, or undefined. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Where the text's held-back end starts: the longest ending that is a proper start of one of
 * `markers` (a marker split across tokens); text.length when there is none.
 */
export function heldFrom(text: string, markers: readonly string[]): number {
  for (let at = Math.max(0, text.length - longest(markers) + 1); at < text.length; at++) {
    const end = text.slice(at);
    if (markers.some((m) => m.length > end.length && m.startsWith(end))) return at;
  }
  return text.length;
}

function longest(markers: readonly string[]): number {
  return markers.reduce((n, m) => Math.max(n, m.length), 0);
}

/**
 * Whether `text` starts with `parts` in order, any JSON whitespace before each: "yes" with the
 * index past the last part, "maybe" when the text ends while it still could, "no" otherwise.
 */
export function startsWithParts(
  text: string,
  parts: readonly string[],
): { match: "yes"; end: number } | { match: "maybe" | "no" } {
  let at = 0;
  for (const part of parts) {
    while (at < text.length && " \t\n\r".includes(text[at])) at++;
    const rest = text.slice(at, at + part.length);
    if (rest.length < part.length) return { match: part.startsWith(rest) ? "maybe" : "no" };
    if (rest !== part) return { match: "no" };
    at += part.length;
  }
  return { match: "yes", end: at };
}

export const isBlank = (text: string) => text.trim() === "";
