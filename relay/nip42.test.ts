import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import { normalizeRelayUrl, verifyAuthEvent } from "./nip42.ts";

const sk = generateSecretKey();
const NOW = 1_700_000_000;
const opts = {
  challenge: "abc",
  relayUrls: ["wss://relay.example.com/"],
  now: NOW,
  maxSkewSeconds: 600,
};

function authEvent(tags: string[][], kind = 22242, at = NOW) {
  return JSON.parse(JSON.stringify(finalizeEvent({ kind, created_at: at, tags, content: "" }, sk)));
}

Deno.test("nip42: relay URLs compare by scheme, host, port and path only", () => {
  assert.equal(normalizeRelayUrl("WSS://Relay.Example.com:443/"), "wss://relay.example.com");
  assert.equal(normalizeRelayUrl("https://relay.example.com/x/?q=1"), "wss://relay.example.com/x");
  assert.equal(normalizeRelayUrl("ws://127.0.0.1:7777"), "ws://127.0.0.1:7777");
  assert.equal(normalizeRelayUrl("relay.example.com"), "wss://relay.example.com");
  assert.equal(normalizeRelayUrl("ftp://x"), undefined);
  assert.equal(normalizeRelayUrl("::"), undefined);
});

Deno.test("nip42: a fresh kind 22242 naming the challenge and this relay authenticates", () => {
  const ev = authEvent([["relay", "wss://relay.example.com"], ["challenge", "abc"]]);
  assert.deepEqual(verifyAuthEvent(ev, opts), { ok: true, pubkey: getPublicKey(sk), id: ev.id });
});

Deno.test("nip42: wrong kind, tampering, staleness, challenge or relay are refused", () => {
  const good = [["relay", "wss://relay.example.com"], ["challenge", "abc"]];
  const reasons = [
    verifyAuthEvent(authEvent(good, 1), opts),
    verifyAuthEvent({ ...authEvent(good), content: "x" }, opts),
    verifyAuthEvent(authEvent(good, 22242, NOW - 601), opts),
    verifyAuthEvent(authEvent([good[0], ["challenge", "abd"]]), opts),
    verifyAuthEvent(authEvent([["relay", "wss://evil.example.com"], good[1]]), opts),
    verifyAuthEvent(authEvent([good[1]]), opts),
    verifyAuthEvent("nope", opts),
  ].map((r) => (r.ok ? "ok" : r.reason));
  assert.deepEqual(reasons.map((r) => r.split(" ").slice(0, 2).join(" ")), [
    "invalid: AUTH",
    "invalid: bad",
    "invalid: created_at",
    "invalid: the",
    "invalid: the",
    "invalid: the",
    "invalid: event",
  ]);
  assert.match(reasons[3], /challenge/);
  assert.match(reasons[4], /relay tag/);
});
