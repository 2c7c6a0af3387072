// NIP-01 REQ filters: validation of what a client sent, and matching of live
// events against a parsed filter. The same semantics run in SQL in
// event-store.ts; the two must agree.

import type { NostrEvent } from "../protocol/mod.ts";

export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  [tag: `#${string}`]: string[] | undefined;
}

const HEX64 = /^[0-9a-f]{64}$/;
const TAG_KEY = /^#[a-zA-Z]$/;
const MAX_KIND = 65535;

/**
 * Validates a filter object from a REQ. Unknown fields (e.g. NIP-50 `search`)
 * are ignored, as most relays do; known fields of the wrong type are errors.
 * `limit` above `maxLimit` is clamped (NIP-11 `max_limit`). An empty array
 * is valid and matches nothing. Throws Error("invalid: ...") naming the field.
 */
export function parseFilter(raw: unknown, limits: { maxLimit: number }): Filter {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error("invalid: a filter must be a JSON object");
  }
  const input = raw as Record<string, unknown>;
  const filter: Filter = {};
  for (const [key, value] of Object.entries(input)) {
    switch (key) {
      case "ids":
      case "authors":
        filter[key] = hexList(key, value);
        break;
      case "kinds":
        filter.kinds = kindList(value);
        break;
      case "since":
      case "until":
        filter[key] = timestamp(key, value);
        break;
      case "limit":
        if (!Number.isSafeInteger(value) || (value as number) < 0) {
          throw new Error("invalid: limit must be a non-negative integer");
        }
        filter.limit = Math.min(value as number, limits.maxLimit);
        break;
      default:
        if (key.startsWith("#")) {
          if (!TAG_KEY.test(key)) {
            throw new Error(`invalid: tag filter "${key}" must be # and a single letter`);
          }
          filter[key as `#${string}`] = stringList(key, value);
        }
    }
  }
  return filter;
}

function hexList(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && HEX64.test(v))) {
    throw new Error(`invalid: ${field} must be an array of 64-character lowercase hex strings`);
  }
  return [...value];
}

function kindList(value: unknown): number[] {
  if (
    !Array.isArray(value) ||
    !value.every((v) => Number.isInteger(v) && v >= 0 && v <= MAX_KIND)
  ) {
    throw new Error(`invalid: kinds must be an array of integers from 0 to ${MAX_KIND}`);
  }
  return [...value];
}

function timestamp(field: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new Error(`invalid: ${field} must be a non-negative integer (UNIX seconds)`);
  }
  return value as number;
}

function stringList(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new Error(`invalid: ${field} must be an array of strings`);
  }
  return [...value];
}

/** The single-letter tag filters of f, as [letter, values] pairs. */
export function tagFilters(f: Filter): [string, string[]][] {
  const out: [string, string[]][] = [];
  for (const [key, values] of Object.entries(f)) {
    if (key.startsWith("#") && Array.isArray(values)) out.push([key.slice(1), values]);
  }
  return out;
}

/** Whether ev matches f, ignoring `limit` (which only bounds stored results). */
export function matchFilter(f: Filter, ev: NostrEvent): boolean {
  if (f.ids !== undefined && !f.ids.includes(ev.id)) return false;
  if (f.authors !== undefined && !f.authors.includes(ev.pubkey)) return false;
  if (f.kinds !== undefined && !f.kinds.includes(ev.kind)) return false;
  if (f.since !== undefined && ev.created_at < f.since) return false;
  if (f.until !== undefined && ev.created_at > f.until) return false;
  for (const [name, values] of tagFilters(f)) {
    const hit = ev.tags.some((t) => t[0] === name && t.length > 1 && values.includes(t[1]));
    if (!hit) return false;
  }
  return true;
}

/**
 * About the JSON size of parsed filters: what a subscription makes the relay hold. Each value
 * counts its length plus its quotes and comma; numbers count 8.
 */
export function filterBytes(filters: Filter[]): number {
  let bytes = 0;
  for (const f of filters) {
    bytes += 2;
    for (const [key, value] of Object.entries(f)) {
      bytes += key.length + 4;
      if (!Array.isArray(value)) bytes += 8;
      else for (const v of value) bytes += typeof v === "string" ? v.length + 3 : 8;
    }
  }
  return bytes;
}
