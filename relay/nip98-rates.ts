// What a NIP-98 endpoint (admission, NIP-86) spends on a caller, and when it records an event id.
//
// A signature check costs ~1 ms, so a stranger's address gets a budget of requests that do not
// end in a member's success: it is charged before the check and refunded once the request turns
// out to be a member's, so members behind a stranger's NAT are slowed only while that stranger
// floods. A member's key gets its own budget, charged after verification (nobody can spend it
// with forged signatures); that bound is what sizes the replay cache, which holds only ids of
// requests that passed every check.
import type { ReplayCache } from "../protocol/mod.ts";
import { createKeyedBuckets, type KeyedBuckets } from "./rate-limit.ts";

export interface Nip98Rates {
  /** Per client IP: requests that were not a member's success. */
  strangers: KeyedBuckets;
  /** Per authenticated member key: accepted requests. */
  keys: KeyedBuckets;
}

/** Per-address buckets, shared by both endpoints (limits in config.ts). */
export function createStrangerBuckets(perMinute: number, now: () => number): KeyedBuckets {
  return createKeyedBuckets(perMinute, now, burstOf(perMinute));
}

/** One endpoint's budgets: the shared per-address buckets and its own per-key ones. */
export function createNip98Rates(
  strangers: KeyedBuckets,
  perKeyPerMinute: number,
  now: () => number,
): Nip98Rates {
  return { strangers, keys: createKeyedBuckets(perKeyPerMinute, now, burstOf(perKeyPerMinute)) };
}

/** A third of a minute's worth: room for a script's or a test's quick run of requests. */
function burstOf(perMinute: number): number {
  return Math.max(5, Math.ceil(perMinute / 3));
}

/** Where an in-process request (no socket) is counted. */
const NO_IP = "in-process";

/** Charges `ip` before the signature check; the seconds to wait when its budget is spent. */
export function chargeIp(
  rates: Nip98Rates | undefined,
  ip: string | undefined,
): number | undefined {
  if (!rates) return undefined;
  const bucket = rates.strangers.of(ip ?? NO_IP);
  return bucket.take() ? undefined : Math.ceil(bucket.retryAfter());
}

/** The request is a member's: it does not count against its address. */
export function refundIp(rates: Nip98Rates | undefined, ip: string | undefined): void {
  rates?.strangers.of(ip ?? NO_IP).refund();
}

export type Acceptance =
  | { ok: true }
  | { ok: false; status: 429 | 503; retryAfter: number; reason: string };

/**
 * A verified member's request: charges the key's budget, then records the event id. A full
 * cache (members beyond what it was sized for) is a 503 to retry, never "already used".
 */
export function acceptMember(
  rates: Nip98Rates | undefined,
  replay: ReplayCache,
  pubkey: string,
  eventId: string,
  now: number,
): Acceptance {
  const bucket = rates?.keys.of(pubkey);
  if (bucket && !bucket.take()) {
    const retryAfter = Math.ceil(bucket.retryAfter());
    return {
      ok: false,
      status: 429,
      retryAfter,
      reason: `too many requests from this key; retry in ${retryAfter} s`,
    };
  }
  if (!replay.record(eventId, now)) {
    bucket?.refund();
    return {
      ok: false,
      status: 503,
      retryAfter: 5,
      reason: "the relay's replay cache is full; retry in a few seconds",
    };
  }
  return { ok: true };
}
