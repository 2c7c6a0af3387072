/**
 * Mesh admission tickets (docs/protocol.md#kind-24625-ticket): kind 24625, signed by the relay,
 * never stored or broadcast. Tags ["p", MEMBER], ["peer", PEER_ID], ["mesh", MESH_ID],
 * ["expiration", UNIX].
 */
import { finalizeEvent, verifyEvent } from "nostr-tools/pure";
import { KIND, type NostrEvent } from "./kinds.ts";
import { isHex64, singleTag, toEventShape } from "./event-shape.ts";
import { pubkeyFromPeerId } from "./nostr-libp2p-key.ts";

/** A ticket lives at most this long after it was signed. */
export const TICKET_MAX_LIFETIME = 600;
/** Clock difference between relay and verifying node that "too far ahead" tolerates. */
const CLOCK_SKEW = 60;

export interface TicketInit {
  member: string;
  peerId: string;
  meshId: string;
  expiresAt: number;
  now: number;
}

export function makeTicket(relaySecret: Uint8Array, t: TicketInit): NostrEvent {
  if (!isHex64(t.member)) throw new Error("ticket member is not a 64-hex pubkey");
  if (pubkeyFromPeerId(t.peerId) !== t.member) {
    throw new Error(`peer id ${t.peerId} is not the key of member ${t.member}`);
  }
  if (t.meshId === "") throw new Error("ticket mesh id is empty");
  if (t.expiresAt <= t.now || t.expiresAt - t.now > TICKET_MAX_LIFETIME) {
    throw new Error(`ticket expiry must be within ${TICKET_MAX_LIFETIME} s after now`);
  }
  return finalizeEvent({
    kind: KIND.TICKET,
    created_at: t.now,
    tags: [["p", t.member], ["peer", t.peerId], ["mesh", t.meshId], [
      "expiration",
      String(t.expiresAt),
    ]],
    content: "",
  }, relaySecret);
}

export type TicketCheck =
  | { ok: true; member: string; peerId: string; expiresAt: number }
  | { ok: false; reason: string };

export interface TicketCheckOptions {
  relayPubkey: string;
  meshId: string;
  /** The peer id the libp2p handshake authenticated; the ticket must name it. */
  peerId?: string;
  /** UNIX seconds. */
  now: number;
}

/**
 * Checks kind, relay pubkey and signature, mesh, expiry (not past, at most 10 min of life, and
 * not more than 10 min + 60 s skew ahead of this clock), that the ticket's peer id is its
 * member's key, and, when given, that it is the authenticated peer.
 */
export function verifyTicket(ev: unknown, opts: TicketCheckOptions): TicketCheck {
  let t: NostrEvent;
  try {
    t = toEventShape(ev); // a fresh copy: verifyEvent must not reuse a cached verdict
  } catch (e) {
    return { ok: false, reason: `ticket is malformed: ${(e as Error).message}` };
  }
  if (t.kind !== KIND.TICKET) {
    return { ok: false, reason: `ticket kind is ${t.kind}, expected ${KIND.TICKET}` };
  }
  if (t.pubkey !== opts.relayPubkey) {
    return { ok: false, reason: "ticket is not signed by this relay" };
  }
  if (!verifyEvent(t)) return { ok: false, reason: "ticket id or signature is invalid" };

  let member, peerId, meshId, expiration;
  try {
    member = singleTag(t, "p");
    peerId = singleTag(t, "peer");
    meshId = singleTag(t, "mesh");
    expiration = singleTag(t, "expiration");
  } catch (e) {
    return { ok: false, reason: `ticket: ${(e as Error).message}` };
  }
  if (!isHex64(member)) return { ok: false, reason: "ticket p tag is not a 64-hex pubkey" };
  if (peerId === undefined) return { ok: false, reason: "ticket has no peer tag" };
  if (meshId !== opts.meshId) {
    return { ok: false, reason: `ticket is for mesh ${meshId ?? "(none)"}, not ${opts.meshId}` };
  }
  const expiresAt = Number(expiration);
  if (expiration === undefined || !/^\d+$/.test(expiration) || !Number.isSafeInteger(expiresAt)) {
    return { ok: false, reason: "ticket expiration tag is not a UNIX time" };
  }
  if (expiresAt <= opts.now) {
    return { ok: false, reason: `ticket expired ${opts.now - expiresAt} s ago` };
  }
  if (
    expiresAt - t.created_at > TICKET_MAX_LIFETIME ||
    expiresAt - opts.now > TICKET_MAX_LIFETIME + CLOCK_SKEW
  ) {
    return { ok: false, reason: `ticket expiry is more than ${TICKET_MAX_LIFETIME} s ahead` };
  }
  if (pubkeyFromPeerId(peerId) !== member) {
    return { ok: false, reason: `ticket peer id ${peerId} is not the key of member ${member}` };
  }
  if (opts.peerId !== undefined && opts.peerId !== peerId) {
    return { ok: false, reason: `ticket is for peer ${peerId}, not ${opts.peerId}` };
  }
  return { ok: true, member, peerId, expiresAt };
}
