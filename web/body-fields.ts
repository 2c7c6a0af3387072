/**
 * Small checks of a JSON body's fields for the routes that map other APIs' bodies onto an
 * InferRequest (anthropic-request.ts, responses-request.ts): a field left out or null is absent;
 * a present one of the wrong kind is a 400 naming it.
 */
import { invalidRequest } from "./http-error.ts";

export type Body = Record<string, unknown>;

export const isObject = (v: unknown): v is Body =>
  typeof v === "object" && v !== null && !Array.isArray(v);
export const isString = (v: unknown): v is string => typeof v === "string";
export const isBool = (v: unknown): v is boolean => typeof v === "boolean";
export const numberIn = (lo: number, hi: number) => (v: unknown): v is number =>
  typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi;
export const intFrom = (lo: number) => (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= lo;

/** `body[name]` when it passes `ok`; undefined when absent or null; else a 400 naming it. */
export function field<T>(
  body: Body,
  name: string,
  ok: (v: unknown) => v is T,
  what: string,
): T | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!ok(v)) throw invalidRequest(`${name} must be ${what}`, name);
  return v;
}
