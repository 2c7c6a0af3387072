// One WebSocket's NIP-01 conversation, transport-free: frames in through receive(), messages out
// through send(). Nothing a client sends can make it throw: malformed frames get a NOTICE,
// refused events an OK false, refused REQs a CLOSED, each with a NIP-01 prefix.
//
// What one connection may make the relay spend is bounded: EVENT, REQ and AUTH each have a
// token bucket (AUTH costs a signature check, and an AUTH identical to the one accepted is
// answered without one), and its open subscriptions' filters together fit maxFilterBytes.
import { getEventHash, verifyEvent } from "nostr-tools/pure";
import { type Logger, type NostrEvent, toEventShape } from "../protocol/mod.ts";
import type { RelayLimits } from "./config.ts";
import type { EventStore } from "./event-store.ts";
import { type Filter, filterBytes, parseFilter } from "./filter.ts";
import { makeChallenge, verifyAuthEvent } from "./nip42.ts";
import { createTokenBucket } from "./rate-limit.ts";
import { mayRead, type Reader, refuseReq } from "./read-policy.ts";
import type { Subscriber, SubscriptionHub } from "./subscriptions.ts";
import type { WritePolicy } from "./write-policy.ts";

export interface ConnectionComponents {
  store: Pick<EventStore, "save" | "query">;
  subscriptions: SubscriptionHub;
  policy: WritePolicy;
  /** Membership as reads see it (with --open, any authenticated pubkey). */
  isMember(pubkey: string): boolean;
  /** URLs a NIP-42 `relay` tag may name. */
  relayUrls: string[];
  limits: RelayLimits;
  /** UNIX seconds, may be fractional. */
  now: () => number;
  log?: Logger;
}

export interface Connection {
  /** Sends the NIP-42 challenge. */
  open(): void;
  /** One WebSocket frame, as received (text; anything else is refused). */
  receive(data: unknown): void;
  /** Drops this connection's subscriptions; later frames are ignored. */
  close(): void;
  /** The pubkey this connection authenticated as, if any. */
  authed(): string | undefined;
  /** Open subscriptions. */
  subscriptionCount(): number;
}

/** How far ahead of the relay's clock an event may be dated (NIP-11 created_at_upper_limit). */
export const MAX_FUTURE_SECONDS = 15 * 60;

export function createConnection(
  send: (msg: unknown[]) => void,
  c: ConnectionComponents,
): Connection {
  const challenge = makeChallenge();
  const eventBucket = createTokenBucket(c.limits.eventsPerMinute, c.now);
  const reqBucket = createTokenBucket(c.limits.reqsPerMinute, c.now);
  const authBucket = createTokenBucket(c.limits.authsPerMinute, c.now);
  /** Filter bytes of each open subscription, and their sum. */
  const filterCost = new Map<string, number>();
  let filterTotal = 0;
  let pubkey: string | undefined;
  let acceptedAuthId: string | undefined;
  let closed = false;

  const reader: Reader = {
    get pubkey() {
      return pubkey;
    },
    isMember: c.isMember,
  };
  const self: Subscriber = {
    mayRead: (ev) => mayRead(ev, reader),
    deliver: (subId, ev) => send(["EVENT", subId, ev]),
  };
  const notice = (text: string) => send(["NOTICE", text]);

  function onEvent(msg: unknown[]): void {
    const raw = msg[1];
    const rawId = (raw as { id?: unknown } | null)?.id;
    const reply = (ok: boolean, text: string) =>
      typeof rawId === "string" ? send(["OK", rawId, ok, text]) : notice(text);
    if (!eventBucket.take()) return reply(false, "rate-limited: slow down, too many events");
    let ev: NostrEvent;
    try {
      ev = checkShape(raw, c.limits, c.now());
    } catch (err) {
      return reply(false, (err as Error).message);
    }
    // A write this connection may not make is refused before the signature check (~1 ms).
    const early = c.policy.precheck(ev, pubkey);
    if (early !== undefined) return reply(false, early);
    try {
      checkSignature(ev);
    } catch (err) {
      return reply(false, (err as Error).message);
    }
    const refusal = c.policy.check(ev, pubkey);
    if (refusal !== undefined) return reply(false, refusal);
    let result;
    try {
      result = c.store.save(ev, Math.floor(c.now()));
    } catch (err) {
      c.log?.error("the relay could not store an event", { id: ev.id, error: String(err) });
      return reply(false, "error: could not store the event");
    }
    reply(result.ok, result.message);
    if (result.ok && !result.message.startsWith("duplicate:")) c.subscriptions.broadcast(ev);
  }

  function onReq(msg: unknown[]): void {
    const subId = msg[1];
    if (typeof subId !== "string") return notice("invalid: REQ needs a subscription id string");
    if (subId.length === 0 || subId.length > c.limits.maxSubidLength) {
      return send([
        "CLOSED",
        subId,
        `invalid: subscription ids are 1 to ${c.limits.maxSubidLength} characters`,
      ]);
    }
    // CLOSED ends the subscription for the client, so a refused REQ ends the one it replaced.
    const refuse = (reason: string) => {
      closeSub(subId);
      send(["CLOSED", subId, reason]);
    };
    if (!reqBucket.take()) return refuse("rate-limited: slow down, too many REQs");
    const rawFilters = msg.slice(2);
    if (rawFilters.length === 0) return refuse("invalid: REQ needs at least one filter");
    if (rawFilters.length > c.limits.maxFilters) {
      return refuse(`invalid: at most ${c.limits.maxFilters} filters per REQ`);
    }
    let filters: Filter[];
    try {
      filters = rawFilters.map((f) => parseFilter(f, { maxLimit: c.limits.maxLimit }));
    } catch (err) {
      return refuse(withPrefix((err as Error).message));
    }
    const refusal = refuseReq(filters, reader);
    if (refusal !== undefined) return refuse(refusal);
    const replacing = c.subscriptions.has(self, subId);
    if (!replacing && c.subscriptions.count(self) >= c.limits.maxSubscriptions) {
      return refuse(`error: at most ${c.limits.maxSubscriptions} open subscriptions; CLOSE one`);
    }
    const cost = filterBytes(filters);
    const others = filterTotal - (filterCost.get(subId) ?? 0);
    if (others + cost > c.limits.maxFilterBytes) {
      return refuse(
        `error: this connection's subscriptions would hold ${others + cost} bytes of filters, ` +
          `over its ${c.limits.maxFilterBytes} (max_filter_bytes); CLOSE some or ask for less`,
      );
    }
    // A filter without a limit still gets a bounded answer from storage.
    const bounded = filters.map((f) =>
      f.limit === undefined ? { ...f, limit: c.limits.maxLimit } : f
    );
    let stored: NostrEvent[];
    try {
      stored = c.store.query(bounded, Math.floor(c.now()));
    } catch (err) {
      c.log?.error("the relay could not query its events", { error: String(err) });
      return refuse("error: could not read stored events");
    }
    for (const ev of stored) if (self.mayRead(ev)) send(["EVENT", subId, ev]);
    send(["EOSE", subId]);
    // The query and this registration run in one synchronous step: no event falls between them.
    c.subscriptions.set(self, subId, filters);
    filterTotal = others + cost;
    filterCost.set(subId, cost);
  }

  function closeSub(subId: string): void {
    c.subscriptions.remove(self, subId);
    filterTotal -= filterCost.get(subId) ?? 0;
    filterCost.delete(subId);
  }

  function onAuth(msg: unknown[]): void {
    const rawId = (msg[1] as { id?: unknown } | null)?.id;
    const id = typeof rawId === "string" ? rawId : undefined;
    if (!authBucket.take()) {
      const text = "rate-limited: slow down, too many AUTH messages";
      return id === undefined ? notice(text) : send(["OK", id, false, text]);
    }
    // The same event again proves nothing new: answered without another signature check.
    if (id !== undefined && id === acceptedAuthId) {
      return send(["OK", id, true, "duplicate: already authenticated with this event"]);
    }
    const result = verifyAuthEvent(msg[1], {
      challenge,
      relayUrls: c.relayUrls,
      now: c.now(),
      maxSkewSeconds: c.limits.authTimeoutSeconds,
    });
    if (result.id === undefined) return notice(result.ok ? "" : result.reason);
    if (!result.ok) return send(["OK", result.id, false, result.reason]);
    pubkey = result.pubkey;
    acceptedAuthId = result.id;
    send(["OK", result.id, true, ""]);
  }

  function dispatch(msg: unknown[]): void {
    switch (msg[0]) {
      case "EVENT":
        return onEvent(msg);
      case "REQ":
        return onReq(msg);
      case "CLOSE":
        if (typeof msg[1] !== "string") return notice("invalid: CLOSE needs a subscription id");
        return closeSub(msg[1]);
      case "AUTH":
        return onAuth(msg);
      case "COUNT":
        // So a client waiting for COUNT hears "no" instead of waiting forever.
        if (typeof msg[1] === "string") {
          return send(["CLOSED", msg[1], "invalid: COUNT is not supported"]);
        }
        return notice("invalid: COUNT is not supported");
      default:
        return notice(`invalid: unknown message type ${JSON.stringify(msg[0])}`.slice(0, 200));
    }
  }

  return {
    open: () => send(["AUTH", challenge]),
    receive(data) {
      if (closed) return;
      try {
        const msg = parseFrame(data, c.limits.maxMessageLength);
        if (typeof msg === "string") return notice(msg);
        dispatch(msg);
      } catch (err) {
        c.log?.error("the relay failed on a client message", { error: String(err) });
        notice("error: the relay failed on this message");
      }
    },
    close() {
      closed = true;
      c.subscriptions.removeAll(self);
      filterCost.clear();
      filterTotal = 0;
    },
    authed: () => pubkey,
    subscriptionCount: () => filterCost.size,
  };
}

/** The frame as a JSON array, or the NOTICE text refusing it. */
function parseFrame(data: unknown, maxLength: number): unknown[] | string {
  if (typeof data !== "string") return "invalid: binary frames are not supported; send JSON text";
  if (byteLengthOver(data, maxLength)) {
    return `invalid: message is larger than ${maxLength} bytes (max_message_length)`;
  }
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return "invalid: message is not valid JSON";
  }
  if (!Array.isArray(msg) || msg.length === 0 || typeof msg[0] !== "string") {
    return "invalid: a message is a JSON array starting with its type";
  }
  return msg;
}

function byteLengthOver(text: string, max: number): boolean {
  if (text.length > max) return true; // every character is at least one byte
  if (text.length * 3 <= max) return false; // and at most three (UTF-16 unit → UTF-8)
  return new TextEncoder().encode(text).length > max;
}

/** Shape and limits: everything but the id and signature; throws "invalid: …". */
function checkShape(raw: unknown, limits: RelayLimits, now: number): NostrEvent {
  let ev: NostrEvent;
  try {
    ev = toEventShape(raw);
  } catch (err) {
    throw new Error(`invalid: ${(err as Error).message}`);
  }
  if (ev.tags.length > limits.maxEventTags) {
    throw new Error(`invalid: more than ${limits.maxEventTags} tags`);
  }
  if (ev.content.length > limits.maxContentLength) {
    throw new Error(`invalid: content longer than ${limits.maxContentLength} characters`);
  }
  if (ev.created_at > now + MAX_FUTURE_SECONDS) {
    throw new Error("invalid: created_at is more than 15 minutes in the future");
  }
  return ev;
}

function checkSignature(ev: NostrEvent): void {
  if (getEventHash(ev) !== ev.id) throw new Error("invalid: event id does not match its content");
  // ev is a fresh object (toEventShape copies), so verifyEvent has no cached verdict on it.
  if (!verifyEvent(ev)) throw new Error("invalid: bad signature");
}

function withPrefix(message: string): string {
  return message.startsWith("invalid:") ? message : `invalid: ${message}`;
}
