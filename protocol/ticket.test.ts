import assert from "node:assert/strict";
import { finalizeEvent, getPublicKey, verifyEvent } from "nostr-tools/pure";
import { makeTicket, verifyTicket } from "./ticket.ts";
import { peerIdFromNostrSecret } from "./nostr-libp2p-key.ts";

const NOW = 1_700_000_000;
const RELAY_SK = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const RELAY_PK = getPublicKey(RELAY_SK);
const MEMBER_SK = Uint8Array.from({ length: 32 }, (_, i) => 50 + i);
const MEMBER = getPublicKey(MEMBER_SK);
const PEER = peerIdFromNostrSecret(MEMBER_SK);
const MESH = "mesh-1";

function ticket(expiresAt = NOW + 300, over: { peerId?: string; meshId?: string } = {}) {
  return makeTicket(RELAY_SK, {
    member: MEMBER,
    peerId: over.peerId ?? PEER,
    meshId: over.meshId ?? MESH,
    expiresAt,
    now: NOW,
  });
}

const opts = { relayPubkey: RELAY_PK, meshId: MESH, peerId: PEER, now: NOW + 10 };

Deno.test("ticket: a fresh ticket verifies and names member, peer and expiry", () => {
  const t = ticket();
  assert.equal(t.kind, 24625);
  assert.deepEqual(t.tags, [["p", MEMBER], ["peer", PEER], ["mesh", MESH], [
    "expiration",
    String(NOW + 300),
  ]]);
  assert.deepEqual(verifyTicket(t, opts), {
    ok: true,
    member: MEMBER,
    peerId: PEER,
    expiresAt: NOW + 300,
  });
  // Also after a JSON round trip, as a peer receives it.
  assert.equal(verifyTicket(JSON.parse(JSON.stringify(t)), opts).ok, true);
});

Deno.test("ticket: an expired ticket is rejected", () => {
  const r = verifyTicket(ticket(NOW + 300), { ...opts, now: NOW + 301 });
  assert.deepEqual(r, { ok: false, reason: "ticket expired 1 s ago" });
  assert.equal(verifyTicket(ticket(NOW + 300), { ...opts, now: NOW + 300 }).ok, false);
});

Deno.test("ticket: a ticket signed by another key is rejected", () => {
  const other = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
  const forged = makeTicket(other, {
    member: MEMBER,
    peerId: PEER,
    meshId: MESH,
    expiresAt: NOW + 300,
    now: NOW,
  });
  const r = verifyTicket(forged, opts);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /not signed by this relay/);
  // Claiming the relay's pubkey without its signature fails the signature check.
  const claimed = verifyTicket({ ...forged, pubkey: RELAY_PK }, opts);
  assert.equal(claimed.ok, false);
  if (!claimed.ok) assert.match(claimed.reason, /signature is invalid/);
});

Deno.test("ticket: a tampered ticket fails even after its original verified", () => {
  const t = ticket();
  assert.equal(verifyEvent(t), true); // caches `true` on the object itself
  const tampered = { ...t, tags: t.tags.map((x) => x[0] === "expiration" ? [x[0], "9"] : x) };
  const r = verifyTicket(tampered, opts);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /signature is invalid/);
});

Deno.test("ticket: a ticket for another mesh is rejected", () => {
  const r = verifyTicket(ticket(NOW + 300, { meshId: "mesh-2" }), opts);
  assert.deepEqual(r, { ok: false, reason: "ticket is for mesh mesh-2, not mesh-1" });
});

Deno.test("ticket: a ticket for another peer than the authenticated one is rejected", () => {
  const otherPeer = peerIdFromNostrSecret(Uint8Array.from({ length: 32 }, (_, i) => 90 + i));
  const r = verifyTicket(ticket(), { ...opts, peerId: otherPeer });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /ticket is for peer 16Uiu2.*, not 16Uiu2/);
});

Deno.test("ticket: makeTicket refuses a peer id that is not the member's key", () => {
  const otherPeer = peerIdFromNostrSecret(Uint8Array.from({ length: 32 }, (_, i) => 90 + i));
  assert.throws(() => ticket(NOW + 300, { peerId: otherPeer }), /is not the key of member/);
});

Deno.test("ticket: expiry more than 10 minutes ahead is refused and rejected", () => {
  assert.throws(() => ticket(NOW + 601), /within 600 s/);
  assert.doesNotThrow(() => ticket(NOW + 600));
  // A relay that signs a longer-lived ticket anyway (made by hand: makeTicket refuses).
  const signed = (createdAt: number, expiresAt: number) =>
    finalizeEvent({
      kind: 24625,
      created_at: createdAt,
      tags: [["p", MEMBER], ["peer", PEER], ["mesh", MESH], ["expiration", String(expiresAt)]],
      content: "",
    }, RELAY_SK);
  const tooLong = "ticket expiry is more than 600 s ahead";
  assert.deepEqual(verifyTicket(signed(NOW - 1, NOW + 600), opts), { ok: false, reason: tooLong });
  // 10 min of life, but signed by a clock 100 s ahead of ours: beyond the 60 s skew allowed.
  assert.deepEqual(verifyTicket(signed(NOW + 100, NOW + 700), opts), {
    ok: false,
    reason: tooLong,
  });
  // 10 min of life from a clock 30 s ahead: within the skew, accepted.
  assert.equal(verifyTicket(signed(NOW + 30, NOW + 630), opts).ok, true);
});

Deno.test("ticket: malformed input and wrong kinds are rejected with a reason", () => {
  assert.match((verifyTicket(null, opts) as { reason: string }).reason, /malformed/);
  assert.match((verifyTicket({ kind: 24625 }, opts) as { reason: string }).reason, /malformed/);
  const t = ticket();
  const r = verifyTicket({ ...t, kind: 1 }, opts);
  assert.match((r as { reason: string }).reason, /kind is 1, expected 24625/);
});
