import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import {
  createReplayCache,
  nip98Header,
  peerIdFromNostrSecret,
  sha256Hex,
  verifyTicket,
} from "../protocol/mod.ts";
import { type AdmissionComponents, handleAdmission } from "./admission-endpoint.ts";
import { openDatabaseFile } from "./db.ts";
import { createMemberStore } from "./members.ts";
import { createTicketRegistry } from "./ticket-registry.ts";

const URL_ = "http://127.0.0.1:7777/admission";
const T0 = 1_700_000_000;

function setup(extra: Partial<AdmissionComponents> = {}) {
  const relaySecret = generateSecretKey();
  const members = createMemberStore(openDatabaseFile(":memory:"));
  const member = generateSecretKey();
  members.add(getPublicKey(member), "member", T0);
  let now = T0;
  const c: AdmissionComponents = {
    members,
    relaySecret,
    meshId: "mesh-test",
    admissionUrl: URL_,
    registry: createTicketRegistry(members),
    replay: createReplayCache(),
    now: () => now,
    ...extra,
  };
  return {
    c,
    members,
    member,
    relayPubkey: getPublicKey(relaySecret),
    setNow: (t: number) => (now = t),
  };
}

interface Ask {
  secret?: Uint8Array;
  peerId?: string;
  body?: string;
  authUrl?: string;
  authMethod?: string;
  authBody?: string;
  createdAt?: number;
  authorization?: string | null;
}

function request(a: Ask): Request {
  const body = a.body ?? JSON.stringify({ peerId: a.peerId });
  const enc = new TextEncoder();
  const authorization = a.authorization !== undefined ? a.authorization : nip98Header(a.secret!, {
    url: a.authUrl ?? URL_,
    method: a.authMethod ?? "POST",
    body: enc.encode(a.authBody ?? body),
  }, a.createdAt ?? T0);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization !== null) headers.authorization = authorization;
  return new Request(URL_, { method: "POST", headers, body });
}

async function ask(c: AdmissionComponents, a: Ask) {
  const res = await handleAdmission(request(a), c);
  return { status: res.status, json: await res.json() };
}

Deno.test("a member gets a relay-signed ticket for its own peer id, recorded as live", async () => {
  const { c, member, relayPubkey } = setup();
  const peerId = peerIdFromNostrSecret(member);
  const { status, json } = await ask(c, { secret: member, peerId });
  assert.equal(status, 200);
  const check = verifyTicket(json.ticket, { relayPubkey, meshId: "mesh-test", peerId, now: T0 });
  assert.deepEqual(check, {
    ok: true,
    member: getPublicKey(member),
    peerId,
    expiresAt: T0 + 300,
  });
  assert.equal(c.registry.isLive(peerId, T0 + 299), true);
  assert.equal(c.registry.isLive(peerId, T0 + 300), false);
});

Deno.test("ticket lifetime is clamped to 10 minutes and the clock's fraction dropped", async () => {
  const { c, member, setNow } = setup({ ttlSeconds: 5000 });
  setNow(T0 + 0.7);
  const peerId = peerIdFromNostrSecret(member);
  const { status, json } = await ask(c, { secret: member, peerId });
  assert.equal(status, 200);
  assert.equal(json.ticket.created_at, T0);
  assert.deepEqual(json.ticket.tags.find((t: string[]) => t[0] === "expiration"), [
    "expiration",
    String(T0 + 600),
  ]);
});

Deno.test("a stranger is refused with 403 not_member and no ticket is recorded", async () => {
  const { c } = setup();
  const stranger = generateSecretKey();
  const peerId = peerIdFromNostrSecret(stranger);
  const { status, json } = await ask(c, { secret: stranger, peerId });
  assert.equal(status, 403);
  assert.equal(json.error.code, "not_member");
  assert.equal(c.registry.isLive(peerId, T0), false);
});

Deno.test("--open admits any authenticated key", async () => {
  const { c } = setup({ open: true });
  const stranger = generateSecretKey();
  const { status } = await ask(c, { secret: stranger, peerId: peerIdFromNostrSecret(stranger) });
  assert.equal(status, 200);
});

Deno.test("bad NIP-98 auth gets 401 unauthorized naming the reason", async () => {
  const { c, member } = setup();
  const peerId = peerIdFromNostrSecret(member);
  const rows: [string, Ask, RegExp][] = [
    ["missing", { authorization: null }, /missing/],
    ["garbage", { authorization: "Nostr !!!" }, /base64|Nostr/],
    ["61 s old", { createdAt: T0 - 61 }, /61 s old/],
    ["61 s ahead", { createdAt: T0 + 61 }, /future/],
    ["wrong URL", { authUrl: "http://127.0.0.1:7777/other" }, /u tag/],
    ["wrong host", { authUrl: "http://evil.example/admission" }, /u tag/],
    ["wrong method", { authMethod: "GET" }, /method/],
    ["wrong payload", { authBody: '{"peerId":"x"}' }, /payload/],
  ];
  for (const [label, a, reason] of rows) {
    const { status, json } = await ask(c, { secret: member, peerId, ...a });
    assert.equal(status, 401, label);
    assert.equal(json.error.code, "unauthorized", label);
    assert.match(json.error.message, reason, label);
  }
  assert.equal(c.registry.liveCount(T0), 0);
  // The ±60 s edges themselves are accepted.
  for (const createdAt of [T0 - 60, T0 + 60]) {
    assert.equal((await ask(c, { secret: member, peerId, createdAt })).status, 200);
  }
});

Deno.test("a replayed auth header is refused the second time", async () => {
  const { c, member } = setup();
  const peerId = peerIdFromNostrSecret(member);
  const body = JSON.stringify({ peerId });
  const authorization = nip98Header(member, {
    url: URL_,
    method: "POST",
    body: new TextEncoder().encode(body),
  }, T0);
  assert.equal((await ask(c, { authorization, body })).status, 200);
  const again = await ask(c, { authorization, body });
  assert.equal(again.status, 401);
  assert.match(again.json.error.message, /replay/);
});

Deno.test("a delegated agent (NIP-OA auth tag) gets 403 even though its owner is a member", async () => {
  const { c, member } = setup();
  const agent = generateSecretKey();
  const peerId = peerIdFromNostrSecret(agent);
  const body = JSON.stringify({ peerId });
  const ev = finalizeEvent({
    kind: 27235,
    created_at: T0,
    content: "",
    tags: [
      ["u", URL_],
      ["method", "POST"],
      ["payload", sha256Hex(new TextEncoder().encode(body))],
      ["auth", getPublicKey(member), "", "00".repeat(64)],
    ],
  }, agent);
  const authorization = `Nostr ${btoa(JSON.stringify(ev))}`;
  const { status, json } = await ask(c, { authorization, body });
  assert.equal(status, 403);
  assert.equal(json.error.code, "delegated_agent");
});

Deno.test("a member asking for someone else's peer id gets 403; a malformed one 400", async () => {
  const { c, member } = setup();
  const other = peerIdFromNostrSecret(generateSecretKey());
  const mismatch = await ask(c, { secret: member, peerId: other });
  assert.equal(mismatch.status, 403);
  assert.equal(mismatch.json.error.code, "peer_mismatch");
  assert.equal(c.registry.isLive(other, T0), false);

  const malformed = await ask(c, { secret: member, peerId: "not-a-peer-id" });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.json.error.code, "invalid_peer_id");

  const badJson = await ask(c, { secret: member, body: "{nope" });
  assert.equal(badJson.status, 400);
  assert.equal(badJson.json.error.code, "bad_request");
});

Deno.test("a removed member's ticket stops being live and no new one is issued", async () => {
  const { c, member, members } = setup();
  const peerId = peerIdFromNostrSecret(member);
  assert.equal((await ask(c, { secret: member, peerId })).status, 200);
  assert.equal(c.registry.isLive(peerId, T0 + 1), true);
  members.remove(getPublicKey(member));
  assert.equal(c.registry.isLive(peerId, T0 + 1), false);
  const again = await ask(c, { secret: member, peerId, createdAt: T0 + 1 });
  assert.equal(again.status, 403);
  assert.equal(again.json.error.code, "not_member");
});

Deno.test("only POST, and bodies over 4 KiB are refused before auth", async () => {
  const { c, member } = setup();
  const get = await handleAdmission(new Request(URL_), c);
  assert.equal(get.status, 405);
  assert.equal((await get.json()).error.code, "method_not_allowed");
  const big = await ask(c, { secret: member, body: JSON.stringify({ peerId: "x".repeat(5000) }) });
  assert.equal(big.status, 413);
});
