/**
 * NIP-98 HTTP auth, verified with every rule of docs/protocol.md#nip-98, and made for outgoing
 * requests.
 *
 * Decisions the NIPs leave open, taken here:
 * - A request "has a body" when `body` is given and non-empty. Such a request needs a `payload`
 *   tag equal to the body's SHA-256 hex. A body-less request may carry a `payload` tag only if
 *   it equals the SHA-256 of the empty string: the tag then still names this request exactly.
 * - The `method` tag is compared case-insensitively (nostr-tools writes what it is given, often
 *   lower case); `u` is compared after `normalizeUrl` on both sides.
 * - `u`, `method`, `payload` and NIP-OA `auth` tags may appear at most once.
 * - Checks run cheapest-truth first (shape, kind, signature) so a forged event is reported as
 *   forged. The replay cache is only looked up here, never written: the caller records the id
 *   (`replay.record`) once the request has also passed its own checks (membership, role), so
 *   neither a rejected request nor a stranger's signed one takes room in the cache.
 */
import { createHash } from "node:crypto";
import { finalizeEvent, verifyEvent } from "nostr-tools/pure";
import { KIND, type NostrEvent } from "./kinds.ts";
import { isHex64, singleTag, tagsNamed, toEventShape } from "./event-shape.ts";
import type { ReplayCache } from "./replay-cache.ts";

export { createReplayCache, type ReplayCache } from "./replay-cache.ts";

const NIP98_MAX_HEADER_BYTES = 64 * 1024;
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export interface Nip98Request {
  url: string;
  method: string;
  body?: Uint8Array;
  authorization: string | null;
}

export type Nip98Result =
  | { ok: true; pubkey: string; event: NostrEvent; delegatedBy?: string }
  | { ok: false; status: 401; reason: string };

export interface Nip98Options {
  /** UNIX seconds. */
  now: () => number;
  /** Ids already used are refused; recording a new one is the caller's step. */
  replay: ReplayCache;
  /** Allowed distance of created_at from now, in seconds. */
  maxSkew?: number;
}

/** Scheme and host lower-cased (by URL), query and fragment dropped, no trailing slash. */
export function normalizeUrl(url: string): string {
  const u = new URL(url);
  const path = u.pathname.replace(/\/+$/, "");
  return `${u.protocol}//${u.host}${path}`;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function fail(reason: string): Nip98Result {
  return { ok: false, status: 401, reason };
}

export function verifyNip98(req: Nip98Request, opts: Nip98Options): Nip98Result {
  const header = req.authorization;
  if (header === null || header === "") return fail("missing Authorization header");
  if (header.length > NIP98_MAX_HEADER_BYTES) {
    return fail(`Authorization header is ${header.length} bytes, over the 64 KiB limit`);
  }
  const match = /^Nostr\s+(\S+)\s*$/i.exec(header);
  if (!match) return fail('Authorization header is not "Nostr <base64 event>"');

  let json: string;
  try {
    const binary = atob(match[1]);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    json = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("Authorization token is not valid base64 of UTF-8 text");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return fail("Authorization token is not JSON");
  }
  let event: NostrEvent;
  try {
    event = toEventShape(raw);
  } catch (e) {
    return fail(`Authorization token is not a Nostr event: ${(e as Error).message}`);
  }
  if (event.kind !== KIND.HTTP_AUTH) {
    return fail(`auth event kind is ${event.kind}, expected ${KIND.HTTP_AUTH}`);
  }
  // `event` is a fresh copy, so verifyEvent's cached verdict cannot come from elsewhere.
  if (!verifyEvent(event)) return fail("auth event id or signature is invalid");

  const now = opts.now();
  const maxSkew = opts.maxSkew ?? 60;
  const skew = event.created_at - now;
  if (Math.abs(skew) > maxSkew) {
    const when = skew > 0 ? `${skew} s in the future` : `${-skew} s old`;
    return fail(`auth event is ${when}, outside the ±${maxSkew} s window`);
  }

  let u: string | undefined, method: string | undefined, payload: string | undefined;
  try {
    u = singleTag(event, "u");
    method = singleTag(event, "method");
    payload = singleTag(event, "payload");
  } catch (e) {
    return fail(`auth event: ${(e as Error).message}`);
  }
  if (u === undefined) return fail("auth event has no u tag");
  let tagUrl: string, reqUrl: string;
  try {
    tagUrl = normalizeUrl(u);
  } catch {
    return fail(`auth event u tag is not a URL: ${JSON.stringify(u.slice(0, 200))}`);
  }
  try {
    reqUrl = normalizeUrl(req.url);
  } catch {
    return fail(`request URL is not a URL: ${JSON.stringify(req.url.slice(0, 200))}`);
  }
  if (tagUrl !== reqUrl) return fail(`auth event u tag ${tagUrl} does not match ${reqUrl}`);

  if (method === undefined) return fail("auth event has no method tag");
  if (method.toUpperCase() !== req.method.toUpperCase()) {
    return fail(`auth event method ${method} does not match ${req.method.toUpperCase()}`);
  }

  const hasBody = req.body !== undefined && req.body.length > 0;
  if (hasBody && payload === undefined) {
    return fail("request has a body but the auth event has no payload tag");
  }
  if (payload !== undefined) {
    const expected = hasBody ? sha256Hex(req.body!) : EMPTY_SHA256;
    if (payload.toLowerCase() !== expected) {
      return fail(
        hasBody
          ? "auth event payload tag is not the SHA-256 of the request body"
          : "auth event payload tag does not match the empty request body",
      );
    }
  }

  const auth = tagsNamed(event, "auth");
  if (auth.length > 1) return fail(`auth event has ${auth.length} NIP-OA auth tags`);
  const delegatedBy = auth[0]?.[1];
  if (auth.length === 1 && !isHex64(delegatedBy)) {
    return fail("auth event has a malformed NIP-OA auth tag (owner is not 64 hex characters)");
  }

  if (opts.replay.has(event.id, now)) return fail("auth event was already used (replay)");

  return delegatedBy === undefined
    ? { ok: true, pubkey: event.pubkey, event }
    : { ok: true, pubkey: event.pubkey, event, delegatedBy };
}

/** `Nostr base64(kind 27235 event)` for a request; a non-empty body gets a payload tag. */
export function nip98Header(
  secretKey: Uint8Array,
  req: { url: string; method: string; body?: Uint8Array },
  createdAt: number = Math.floor(Date.now() / 1000),
): string {
  const tags = [["u", req.url], ["method", req.method.toUpperCase()]];
  if (req.body !== undefined && req.body.length > 0) tags.push(["payload", sha256Hex(req.body)]);
  // The replay cache accepts an event id once; two honest identical requests in the same second
  // would otherwise sign the same id. A random nonce tag (ignored by verifiers) keeps them apart.
  const nonce = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  tags.push(["nonce", nonce]);
  const ev = finalizeEvent(
    { kind: KIND.HTTP_AUTH, created_at: createdAt, tags, content: "" },
    secretKey,
  );
  const bytes = new TextEncoder().encode(JSON.stringify(ev));
  return `Nostr ${btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""))}`;
}
