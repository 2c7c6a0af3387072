/**
 * NIP-86 relay management over HTTP: `POST` to the relay's own URL (its http(s) form) with
 * `Content-Type: application/nostr+json+rpc`, body `{"method", "params"}`, answered with
 * `{"result", "error"?}`. Every call needs NIP-98 auth whose `u` is the relay's http URL and
 * whose `payload` is the body's SHA-256, from the owner or an admin.
 *
 * Status codes: 200 with a result; 401 bad or missing auth; 403 a caller who is not owner or
 * admin, or a change their role may not make; 400 a malformed call, unknown method or bad
 * params; 413 a body over 64 KiB; 415 another Content-Type; 429 (Retry-After) an address whose
 * budget of refused requests is spent, checked before the signature, or an owner/admin key over
 * its own; 503 a full replay cache. Errors keep NIP-86's shape,
 * `{"result": null, "error": "message"}`. The NIP-98 event id is recorded as used only once the
 * caller is known to be an owner or admin (nip98-rates.ts).
 *
 * Methods: `supportedmethods`; `allowpubkey [pubkey, reason?]` adds a member (an existing
 * admin or owner keeps their role); `disallowpubkey [pubkey, reason?]` removes one;
 * `listallowedpubkeys` → `[{pubkey, role}]`. Grove extensions, owner only: `grantadmin
 * [pubkey]` makes someone (member or not) an admin; `revokeadmin [pubkey]` makes an admin a
 * plain member. Nobody removes or demotes the owner over NIP-86 (the owner comes from
 * `--owner`), and an admin may not remove another admin. Pubkeys are hex; npub is accepted.
 *
 * Member changes go through the MemberStore, whose onChange listeners (wired by the relay)
 * republish NIP-43 and revoke tickets.
 */
import { decode } from "nostr-tools/nip19";
import { type Logger, type ReplayCache, verifyNip98 } from "../protocol/mod.ts";
import { readBody } from "./admission-endpoint.ts";
import type { MemberStore, Role } from "./members.ts";
import { acceptMember, chargeIp, type Nip98Rates, refundIp } from "./nip98-rates.ts";

export const NIP86_CONTENT_TYPE = "application/nostr+json+rpc";
const NIP86_MAX_BODY = 64 * 1024;

export interface Nip86Components {
  members: Pick<MemberStore, "role" | "add" | "remove" | "list">;
  /** The relay's public http(s) URL that NIP-98 `u` must name; defaults to the request's URL. */
  url?: string;
  /** This endpoint's own cache of used NIP-98 ids (admission has another). */
  replay: ReplayCache;
  /** Per-IP and per-key budgets; none in process (tests, the members CLI). */
  rates?: Nip98Rates;
  /** UNIX seconds (fractions allowed). */
  now: () => number;
  log?: Logger;
}

const NIP86_METHODS = [
  "supportedmethods",
  "allowpubkey",
  "disallowpubkey",
  "listallowedpubkeys",
  "grantadmin",
  "revokeadmin",
] as const;

type Answer = { status: number; result?: unknown; error?: string; retryAfter?: number };

/** `ip`: the client's address (the edge's, or the proxy's header with --trust-proxy). */
export async function handleNip86(
  req: Request,
  c: Nip86Components,
  ip?: string,
): Promise<Response> {
  if (req.method !== "POST") return answer({ status: 405, error: `use POST, not ${req.method}` });
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== NIP86_CONTENT_TYPE) {
    return answer({ status: 415, error: `Content-Type must be ${NIP86_CONTENT_TYPE}` });
  }
  const body = await readBody(req, NIP86_MAX_BODY);
  if (body === undefined) return answer({ status: 413, error: "body is over 64 KiB" });
  const wait = chargeIp(c.rates, ip);
  if (wait !== undefined) {
    return answer({
      status: 429,
      retryAfter: wait,
      error: `rate-limited: too many refused admission or management requests from ` +
        `${ip ?? "this client"}; retry in ${wait} s`,
    });
  }

  const auth = verifyNip98({
    url: c.url ?? req.url,
    method: req.method,
    body,
    authorization: req.headers.get("authorization"),
  }, { now: c.now, replay: c.replay });
  if (!auth.ok) {
    c.log?.warn(`management call refused: ${auth.reason}`);
    return answer({ status: 401, error: `unauthorized: ${auth.reason}` });
  }
  if (auth.delegatedBy !== undefined) {
    return answer({ status: 403, error: "restricted: delegated agents may not manage the relay" });
  }
  const callerRole = c.members.role(auth.pubkey);
  if (callerRole !== "owner" && callerRole !== "admin") {
    c.log?.warn(`management call refused to ${short(auth.pubkey)}: not an owner or admin`);
    return answer({ status: 403, error: "restricted: only the relay's owner or an admin" });
  }
  const accepted = acceptMember(c.rates, c.replay, auth.pubkey, auth.event.id, c.now());
  if (!accepted.ok) {
    c.log?.warn(`management call refused to ${short(auth.pubkey)}: ${accepted.reason}`);
    const prefix = accepted.status === 429 ? "rate-limited" : "error";
    return answer({
      status: accepted.status,
      retryAfter: accepted.retryAfter,
      error: `${prefix}: ${accepted.reason}`,
    });
  }
  refundIp(c.rates, ip);

  let call: { method: string; params: unknown[] };
  try {
    call = parseCall(body);
  } catch (e) {
    return answer({ status: 400, error: `invalid: ${(e as Error).message}` });
  }
  try {
    return answer(run(call, { pubkey: auth.pubkey, role: callerRole }, c));
  } catch (e) {
    return answer({ status: 400, error: `invalid: ${(e as Error).message}` });
  }
}

function run(
  call: { method: string; params: unknown[] },
  caller: { pubkey: string; role: "owner" | "admin" },
  c: Nip86Components,
): Answer {
  const who = `${caller.role} ${short(caller.pubkey)}`;
  const ownerOnly = (): Answer | undefined =>
    caller.role === "owner"
      ? undefined
      : { status: 403, error: `restricted: only the owner may call ${call.method}` };

  switch (call.method) {
    case "supportedmethods":
      return { status: 200, result: [...NIP86_METHODS] };
    case "listallowedpubkeys":
      return {
        status: 200,
        result: c.members.list().map((m) => ({ pubkey: m.pubkey, role: m.role })),
      };
    case "allowpubkey": {
      const target = pubkeyParam(call.params);
      const reason = reasonParam(call.params);
      if (c.members.role(target) !== undefined) return { status: 200, result: true };
      c.members.add(target, "member", Math.floor(c.now()));
      c.log?.info(`${who} added member ${short(target)}${reason}`);
      return { status: 200, result: true };
    }
    case "disallowpubkey": {
      const target = pubkeyParam(call.params);
      const reason = reasonParam(call.params);
      const role = c.members.role(target);
      if (role === undefined) return { status: 200, result: true };
      if (role === "owner") {
        return { status: 403, error: "restricted: the owner cannot be removed over NIP-86" };
      }
      if (role === "admin" && caller.role !== "owner") {
        return { status: 403, error: "restricted: only the owner may remove an admin" };
      }
      c.members.remove(target);
      c.log?.info(`${who} removed ${role} ${short(target)}${reason}`);
      return { status: 200, result: true };
    }
    case "grantadmin":
    case "revokeadmin": {
      const refused = ownerOnly();
      if (refused) return refused;
      const target = pubkeyParam(call.params);
      const role = c.members.role(target);
      if (role === "owner") {
        return { status: 403, error: "restricted: the owner's role cannot change over NIP-86" };
      }
      const next: Role = call.method === "grantadmin" ? "admin" : "member";
      if (call.method === "revokeadmin" && role !== "admin") return { status: 200, result: true };
      if (c.members.add(target, next, Math.floor(c.now()))) {
        c.log?.info(`${who} made ${short(target)} ${next === "admin" ? "an admin" : "a member"}`);
      }
      return { status: 200, result: true };
    }
    default:
      return {
        status: 400,
        error: `invalid: unknown method ${JSON.stringify(call.method.slice(0, 64))}; ` +
          `supported: ${NIP86_METHODS.join(", ")}`,
      };
  }
}

function parseCall(body: Uint8Array): { method: string; params: unknown[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new Error("body is not JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error('body must be {"method": string, "params": array}');
  }
  const { method, params } = raw as Record<string, unknown>;
  if (typeof method !== "string") throw new Error("method must be a string");
  if (params !== undefined && !Array.isArray(params)) throw new Error("params must be an array");
  return { method, params: params ?? [] };
}

function pubkeyParam(params: unknown[]): string {
  const value = params[0];
  if (typeof value !== "string") throw new Error("params[0] must be a pubkey (hex or npub)");
  return toHexPubkey(value);
}

function reasonParam(params: unknown[]): string {
  const reason = params[1];
  if (reason === undefined || reason === null || reason === "") return "";
  if (typeof reason !== "string") throw new Error("params[1] (reason) must be a string");
  return ` (reason: ${reason.slice(0, 200)})`;
}

/** A pubkey as 64 lowercase hex characters, from hex (any case) or an npub; throws otherwise. */
export function toHexPubkey(input: string): string {
  const s = input.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return s.toLowerCase();
  if (s.toLowerCase().startsWith("npub1")) {
    try {
      const d = decode(s.toLowerCase());
      if (d.type === "npub") return d.data;
    } catch {
      // fall through to the error below
    }
    throw new Error(`${JSON.stringify(s.slice(0, 80))} is not a valid npub`);
  }
  throw new Error(
    `${JSON.stringify(s.slice(0, 80))} is not a pubkey (64 hex characters or an npub)`,
  );
}

function answer(a: Answer): Response {
  const body = a.error === undefined
    ? { result: a.result ?? null }
    : { result: null, error: a.error };
  const headers: Record<string, string> = { "content-type": NIP86_CONTENT_TYPE };
  if (a.retryAfter !== undefined) headers["retry-after"] = String(a.retryAfter);
  return new Response(JSON.stringify(body), { status: a.status, headers });
}

function short(id: string): string {
  return `${id.slice(0, 8)}…`;
}
