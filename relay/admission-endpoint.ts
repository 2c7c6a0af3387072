/**
 * Mesh admission (docs/protocol.md#admission): `POST {admission_url}` with NIP-98 auth and
 * `{"peerId"}` gets a member a relay-signed ticket (kind 24625) for the peer id of their own key.
 *
 * Answers, checked in this order so that a caller learns no more than they are entitled to:
 * - 405 `method_not_allowed` for anything but POST; 413 `payload_too_large` over 4 KiB.
 * - 429 `rate_limited` (with Retry-After) before any signature check, to an address whose
 *   budget of refused requests is spent (nip98-rates.ts); members' successes cost it nothing.
 * - 401 `unauthorized`: missing, malformed, expired, replayed or mismatched NIP-98 auth
 *   (`u` must be the admission URL, `method` POST, `payload` the body's SHA-256).
 * - 403 `delegated_agent`: the auth event has a NIP-OA `auth` tag, even when its owner is a
 *   member (delegated agents are not admitted in this version).
 * - 403 `not_member`: the authenticated key is not a member (skipped with `--open`).
 * - 429 `rate_limited` to a member key over its own budget; 503 `busy` if the replay cache is
 *   full. Only here, past every check of who is asking, is the event id recorded as used.
 * - 400 `bad_request`: the body is not JSON `{"peerId": string}`.
 * - 400 `invalid_peer_id`: the peer id does not parse as a secp256k1 peer id. This is the
 *   caller's malformed input, not a refusal, hence 400 rather than 403.
 * - 403 `peer_mismatch`: a valid peer id of some other key; a member may only admit their own.
 * - 200 `{"ticket": EVENT}` expiring `ttlSeconds` (default 300, at most 600) from now.
 */
import {
  jsonError,
  type Logger,
  makeTicket,
  pubkeyFromPeerId,
  type ReplayCache,
  TICKET_MAX_LIFETIME,
  verifyNip98,
} from "../protocol/mod.ts";
import { acceptMember, chargeIp, type Nip98Rates, refundIp } from "./nip98-rates.ts";
import type { MemberCheck, TicketRegistry } from "./ticket-registry.ts";

const ADMISSION_MAX_BODY = 4096;
const DEFAULT_TICKET_TTL = 300;

export interface AdmissionComponents {
  members: MemberCheck;
  relaySecret: Uint8Array;
  meshId: string;
  /** The public URL nodes POST to, as advertised in NIP-11 `mesh.admission_url`. */
  admissionUrl: string;
  registry: TicketRegistry;
  /** This endpoint's own cache of used NIP-98 ids (NIP-86 has another). */
  replay: ReplayCache;
  /** Per-IP and per-key budgets; none in process (tests). */
  rates?: Nip98Rates;
  /** UNIX seconds (fractions allowed). */
  now: () => number;
  /** Ticket lifetime; clamped to 1..600 s. */
  ttlSeconds?: number;
  /** `--open`: any authenticated, non-delegated key is admitted. */
  open?: boolean;
  log?: Logger;
}

/** `ip`: the client's address (the edge's, or the proxy's header with --trust-proxy). */
export async function handleAdmission(
  req: Request,
  c: AdmissionComponents,
  ip?: string,
): Promise<Response> {
  if (req.method !== "POST") {
    return errorResponse(405, "method_not_allowed", `use POST, not ${req.method}`);
  }
  const body = await readBody(req, ADMISSION_MAX_BODY);
  if (body === undefined) {
    return errorResponse(413, "payload_too_large", `body is over ${ADMISSION_MAX_BODY} bytes`);
  }
  const wait = chargeIp(c.rates, ip);
  if (wait !== undefined) {
    return errorResponse(
      429,
      "rate_limited",
      `too many refused admission or management requests from ${ip ?? "this client"}; ` +
        `retry in ${wait} s`,
      wait,
    );
  }

  const auth = verifyNip98({
    url: c.admissionUrl,
    method: req.method,
    body,
    authorization: req.headers.get("authorization"),
  }, { now: c.now, replay: c.replay });
  if (!auth.ok) {
    c.log?.warn(`admission refused: ${auth.reason}`);
    return errorResponse(401, "unauthorized", auth.reason);
  }
  const who = short(auth.pubkey);
  if (auth.delegatedBy !== undefined) {
    c.log?.warn(`admission refused to ${who}: a delegated agent of ${short(auth.delegatedBy)}`);
    return errorResponse(
      403,
      "delegated_agent",
      "delegated agents (NIP-OA auth tag) are not admitted to the mesh; use the owner's key",
    );
  }
  if (c.open !== true && !c.members.isMember(auth.pubkey)) {
    c.log?.warn(`admission refused to ${who}: not a member`);
    return errorResponse(403, "not_member", `${auth.pubkey} is not a member of this relay`);
  }
  const accepted = acceptMember(c.rates, c.replay, auth.pubkey, auth.event.id, c.now());
  if (!accepted.ok) {
    c.log?.warn(`admission refused to ${who}: ${accepted.reason}`);
    const code = accepted.status === 429 ? "rate_limited" : "busy";
    return errorResponse(accepted.status, code, accepted.reason, accepted.retryAfter);
  }
  refundIp(c.rates, ip);

  const peerId = parsePeerIdBody(body);
  if (peerId === undefined) {
    return errorResponse(400, "bad_request", 'body must be JSON {"peerId": "<libp2p peer id>"}');
  }
  const peerKey = pubkeyFromPeerId(peerId);
  if (peerKey === undefined) {
    return errorResponse(
      400,
      "invalid_peer_id",
      `${JSON.stringify(peerId.slice(0, 100))} is not a secp256k1 libp2p peer id`,
    );
  }
  if (peerKey !== auth.pubkey) {
    c.log?.warn(`admission refused to ${who}: peer ${short(peerId)} belongs to another key`);
    return errorResponse(
      403,
      "peer_mismatch",
      `peer id ${peerId} is not the key ${auth.pubkey} that signed the request`,
    );
  }

  const now = Math.floor(c.now());
  const ttl = Math.max(1, Math.min(c.ttlSeconds ?? DEFAULT_TICKET_TTL, TICKET_MAX_LIFETIME));
  const expiresAt = now + ttl;
  const ticket = makeTicket(c.relaySecret, {
    member: auth.pubkey,
    peerId,
    meshId: c.meshId,
    expiresAt,
    now,
  });
  c.registry.issue(auth.pubkey, peerId, expiresAt);
  c.log?.info(
    `member ${who} got a ticket for peer ${short(peerId)}, valid until ${clock(expiresAt)}`,
  );
  return Response.json({ ticket }, { status: 200 });
}

function parsePeerIdBody(body: Uint8Array): string | undefined {
  try {
    const json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
    const peerId = (json as Record<string, unknown>).peerId;
    return typeof peerId === "string" && peerId !== "" ? peerId : undefined;
  } catch {
    return undefined;
  }
}

/** The body, or undefined when it is larger than `max` bytes (read no further than that). */
export async function readBody(req: Request, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) return undefined;
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

function errorResponse(
  status: number,
  code: string,
  message: string,
  retryAfter?: number,
): Response {
  const headers = retryAfter === undefined ? undefined : { "retry-after": String(retryAfter) };
  return Response.json(jsonError(code, message), { status, headers });
}

function short(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

function clock(unix: number): string {
  return new Date(unix * 1000).toISOString().slice(11, 19) + " UTC";
}
