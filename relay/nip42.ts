// NIP-42: the relay challenges each connection; a client proves its key with a signed kind 22242
// event naming the challenge and this relay's URL. Pure functions: the clock is passed in.
import { verifyEvent } from "nostr-tools/pure";
import { KIND } from "../protocol/mod.ts";
import { toEventShape } from "../protocol/mod.ts";

export type AuthResult = { ok: true; pubkey: string; id: string } | {
  ok: false;
  id: string | undefined;
  reason: string;
};

export interface AuthOptions {
  challenge: string;
  /** URLs this relay answers on; the event's `relay` tag must name one (after normalization). */
  relayUrls: string[];
  /** UNIX seconds. */
  now: number;
  /** How far created_at may be from now; NIP-42 suggests about 10 minutes. */
  maxSkewSeconds: number;
}

/** A fresh challenge: 16 random bytes as hex. */
export function makeChallenge(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A relay URL in comparable form: ws/wss (http/https map onto them), host lower-case, default
 * port dropped, no trailing slash, no query or fragment. Undefined for something that is no URL.
 */
export function normalizeRelayUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url.includes("://") ? url : `wss://${url}`);
  } catch {
    return undefined;
  }
  const scheme = { "http:": "ws:", "https:": "wss:" }[u.protocol] ?? u.protocol;
  if (scheme !== "ws:" && scheme !== "wss:") return undefined;
  const defaultPort = scheme === "ws:" ? "80" : "443";
  const port = u.port === "" || u.port === defaultPort ? "" : `:${u.port}`;
  const path = u.pathname.replace(/\/+$/, "");
  return `${scheme}//${u.hostname.toLowerCase()}${port}${path}`;
}

/** Checks the event of an ["AUTH", event] message. `raw` must be freshly parsed JSON. */
export function verifyAuthEvent(raw: unknown, opts: AuthOptions): AuthResult {
  const rawId = typeof raw === "object" && raw !== null
    ? (raw as Record<string, unknown>).id
    : undefined;
  const id = typeof rawId === "string" ? rawId : undefined;
  let ev;
  try {
    ev = toEventShape(raw);
  } catch (err) {
    return { ok: false, id, reason: `invalid: ${(err as Error).message}` };
  }
  const fail = (reason: string): AuthResult => ({ ok: false, id: ev.id, reason });
  if (ev.kind !== KIND.CLIENT_AUTH) return fail(`invalid: AUTH needs kind 22242, got ${ev.kind}`);
  if (Math.abs(ev.created_at - opts.now) > opts.maxSkewSeconds) {
    return fail(`invalid: created_at is more than ${opts.maxSkewSeconds} s from the relay's clock`);
  }
  const challenge = ev.tags.find((t) => t[0] === "challenge")?.[1];
  if (challenge !== opts.challenge) return fail("invalid: the challenge does not match");
  const relayTag = ev.tags.find((t) => t[0] === "relay")?.[1];
  const named = relayTag === undefined ? undefined : normalizeRelayUrl(relayTag);
  const accepted = opts.relayUrls.map(normalizeRelayUrl);
  if (named === undefined || !accepted.includes(named)) {
    return fail(
      `invalid: the relay tag ${JSON.stringify(relayTag ?? null)} does not name this relay`,
    );
  }
  // Last: the signature check is the one that costs (~1 ms), so garbage is refused for free.
  if (!verifyEvent(ev)) return fail("invalid: bad event id or signature");
  return { ok: true, pubkey: ev.pubkey, id: ev.id };
}
