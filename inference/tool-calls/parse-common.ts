/**
 * What the per-format parsers share: their streaming face, turning a parsed JSON value into a
 * call (or refusing it, so it stays text), holding back a text's end that may be the start of a
 * marker, and collecting a call's JSON as it streams.
 */
import { createJsonScanner, JSON_OPEN } from "./json-scan.ts";
import type { ParsedToolCall } from "./types.ts";

/** What one piece of output (or the end) released: plain text, and calls now whole. */
export interface ParseStep {
  text: string;
  calls: ParsedToolCall[];
  /** Reasoning the model wrote apart from its answer (harmony's analysis channel). */
  reasoning?: string;
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

/** The streaming face over a parser's step, given the new text ("" and final at the end). */
export function streamingParser(run: (text: string, final: boolean) => ParseStep): ToolCallParser {
  return { push: (text) => run(text, false), end: () => run("", true) };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Where a call's arguments are, first found first: OpenAI's key, then Llama's. */
const ARGUMENT_KEYS = ["arguments", "parameters"];

/**
 * `{"name", <argument key>}` (or OpenAI's `{"function": {…}}`) → a call, when the name is one
 * that may be called and the arguments are an object or JSON text of one; else undefined.
 */
export function toCall(
  value: unknown,
  names: ReadonlySet<string>,
  argumentKeys: readonly string[] = ARGUMENT_KEYS,
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

/** Every value as a call (toCall), or undefined when there are none or one is not a call. */
export function toCalls(
  values: readonly unknown[],
  names: ReadonlySet<string>,
): ParsedToolCall[] | undefined {
  const calls = values.map((v) => toCall(v, names));
  return calls.length > 0 && calls.every((c) => c !== undefined)
    ? calls as ParsedToolCall[]
    : undefined;
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

/** A JSON value read whole, or what came of one that broke or was cut off by the end. */
export interface JsonRead {
  /** Its text; all that came when it is not whole. */
  body: string;
  /** The parsed value: undefined unless whole and JSON. */
  value: unknown;
  /** What follows it. */
  rest: string;
}

/**
 * Reads the next text of a JSON value: undefined while the value is open (all of the text
 * taken), else what was read.
 */
export type JsonReader = (text: string, final: boolean) => JsonRead | undefined;

/** Collects one JSON object or array as it streams in, checking it as it comes (json-scan.ts). */
export function jsonReader(): JsonReader {
  const scanner = createJsonScanner();
  let body = "";
  return (text, final) => {
    const end = scanner.feed(text);
    if (end === JSON_OPEN && !final) {
      body += text;
      return undefined;
    }
    if (end < 0) return { body: body + text, value: undefined, rest: "" };
    body += text.slice(0, end);
    return { body, value: parseJson(body), rest: text.slice(end) };
  };
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
