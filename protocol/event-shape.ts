import type { NostrEvent } from "./kinds.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

export function isHex64(s: unknown): s is string {
  return typeof s === "string" && HEX64.test(s);
}

/**
 * Checks that `raw` has the NIP-01 event shape and returns a NEW plain object with exactly the
 * event's fields. Returning a copy matters: nostr-tools' verifyEvent caches its verdict on the
 * object it checked, so only a fresh object may be handed to it. Throws naming the bad field.
 */
export function toEventShape(raw: unknown): NostrEvent {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error("event is not a JSON object");
  }
  const e = raw as Record<string, unknown>;
  if (!isHex64(e.id)) throw new Error("event id is not 64 lowercase hex characters");
  if (!isHex64(e.pubkey)) throw new Error("event pubkey is not 64 lowercase hex characters");
  if (typeof e.sig !== "string" || !HEX128.test(e.sig)) {
    throw new Error("event sig is not 128 lowercase hex characters");
  }
  if (!Number.isSafeInteger(e.created_at) || (e.created_at as number) < 0) {
    throw new Error("event created_at is not a non-negative integer");
  }
  if (!Number.isSafeInteger(e.kind) || (e.kind as number) < 0 || (e.kind as number) > 65535) {
    throw new Error("event kind is not an integer in 0..65535");
  }
  if (typeof e.content !== "string") throw new Error("event content is not a string");
  if (!Array.isArray(e.tags)) throw new Error("event tags is not an array");
  const tags: string[][] = [];
  for (const [i, t] of e.tags.entries()) {
    if (!Array.isArray(t) || !t.every((x) => typeof x === "string")) {
      throw new Error(`event tags[${i}] is not an array of strings`);
    }
    tags.push([...t]);
  }
  return {
    id: e.id,
    pubkey: e.pubkey,
    created_at: e.created_at as number,
    kind: e.kind as number,
    tags,
    content: e.content,
    sig: e.sig,
  };
}

/** The tags named `name`. */
export function tagsNamed(ev: NostrEvent, name: string): string[][] {
  return ev.tags.filter((t) => t[0] === name);
}

/** The value of the single tag `name`; undefined when absent; throws when repeated. */
export function singleTag(ev: NostrEvent, name: string): string | undefined {
  const found = tagsNamed(ev, name);
  if (found.length > 1) throw new Error(`event has ${found.length} "${name}" tags, expected one`);
  return found[0]?.[1];
}
