/**
 * Numbers read from a GGUF's metadata by the model configs (model-config.ts and the MoE and
 * recurrent parts), each failing with an error that names the key and the value.
 */
import type { GgufValue } from "./gguf.ts";

/** A number (a u64 as Number), `fallback` where the key is missing. */
export function metaNumber(
  meta: Record<string, GgufValue>,
  key: string,
  fallback?: number,
): number {
  const v = meta[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new Error(`model metadata lacks "${key}"`);
  }
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "number") throw new Error(`model metadata "${key}" is not a number`);
  return v;
}

/** A count: a whole number in 1..max. */
export function metaCount(
  meta: Record<string, GgufValue>,
  key: string,
  max: number,
  fallback?: number,
): number {
  const v = metaNumber(meta, key, fallback);
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new Error(`model metadata "${key}" is ${v}; expected a whole number from 1 to ${max}`);
  }
  return v;
}
