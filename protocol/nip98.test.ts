import assert from "node:assert/strict";
import { finalizeEvent, getPublicKey } from "nostr-tools/pure";
import { createReplayCache, nip98Header, normalizeUrl, sha256Hex, verifyNip98 } from "./nip98.ts";
import type { NostrEvent } from "./kinds.ts";

const NOW = 1_700_000_000;
const SK = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const PK = getPublicKey(SK);
const URL_ = "https://relay.example.com/admission";
const BODY = new TextEncoder().encode('{"peerId":"16Uiu2HAm"}');

function event(over: Partial<NostrEvent> = {}, tags?: string[][]): NostrEvent {
  return finalizeEvent({
    kind: over.kind ?? 27235,
    created_at: over.created_at ?? NOW,
    tags: tags ?? [["u", URL_], ["method", "POST"], ["payload", sha256Hex(BODY)]],
    content: over.content ?? "",
  }, SK);
}

function header(ev: unknown): string {
  return `Nostr ${btoa(JSON.stringify(ev))}`;
}

// Pass `null` for a body-less request (an `undefined` argument would take the default).
function verify(
  authorization: string | null,
  req: { url?: string; method?: string } = {},
  body: Uint8Array | null = BODY,
) {
  return verifyNip98(
    { url: req.url ?? URL_, method: req.method ?? "POST", body: body ?? undefined, authorization },
    { now: () => NOW, replay: createReplayCache() },
  );
}

function assertFails(result: ReturnType<typeof verify>, pattern: RegExp) {
  assert.equal(result.ok, false, "expected a rejection");
  if (result.ok) return;
  assert.equal(result.status, 401);
  assert.match(result.reason, pattern);
}

Deno.test("nip98: a well-formed POST with payload passes and names the signer", () => {
  const r = verify(header(event()));
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(r.pubkey, PK);
  assert.equal(r.delegatedBy, undefined);
  assert.equal(r.event.kind, 27235);
});

Deno.test("nip98: nip98Header makes a header verifyNip98 accepts", () => {
  const h = nip98Header(SK, { url: URL_, method: "post", body: BODY }, NOW);
  assert.match(h, /^Nostr [A-Za-z0-9+/]+=*$/);
  const r = verify(h);
  assert.equal(r.ok, true);
  const get = nip98Header(SK, { url: URL_, method: "GET" }, NOW);
  assert.equal(verify(get, { method: "GET" }, null).ok, true);
});

Deno.test("nip98: created_at at exactly ±60 s passes", () => {
  assert.equal(verify(header(event({ created_at: NOW + 60 }))).ok, true);
  assert.equal(verify(header(event({ created_at: NOW - 60 }))).ok, true);
});

Deno.test("nip98: created_at 61 s in the future is rejected", () => {
  assertFails(verify(header(event({ created_at: NOW + 61 }))), /61 s in the future/);
});

Deno.test("nip98: created_at 61 s in the past is rejected", () => {
  assertFails(verify(header(event({ created_at: NOW - 61 }))), /61 s old/);
});

Deno.test("nip98: verifying never records; an id the caller recorded is refused as a replay", () => {
  const replay = createReplayCache();
  const req = { url: URL_, method: "POST", body: BODY, authorization: header(event()) };
  const first = verifyNip98(req, { now: () => NOW, replay });
  assert.equal(first.ok, true);
  assert.equal(verifyNip98(req, { now: () => NOW, replay }).ok, true, "not recorded by verify");
  assert.equal(replay.size(NOW), 0);
  if (first.ok) assert.equal(replay.record(first.event.id, NOW), true);
  assertFails(verifyNip98(req, { now: () => NOW + 30, replay }), /replay/);
});

Deno.test("nip98: a u tag for another path or host is rejected", () => {
  assertFails(verify(header(event()), { url: "https://relay.example.com/other" }), /u tag/);
  assertFails(verify(header(event()), { url: "https://evil.example.com/admission" }), /u tag/);
  assertFails(verify(header(event()), { url: "http://relay.example.com/admission" }), /u tag/);
});

Deno.test("nip98: URLs match after normalization on both sides", () => {
  const tagged = (u: string) =>
    header(event({}, [["u", u], ["method", "POST"], ["payload", sha256Hex(BODY)]]));
  assert.equal(verify(tagged("HTTPS://Relay.Example.COM/admission/")).ok, true);
  assert.equal(verify(tagged(URL_ + "?nonce=1")).ok, true);
  assert.equal(verify(tagged(URL_), { url: "https://RELAY.example.com/admission/?a=b" }).ok, true);
  assert.equal(verify(tagged("https://relay.example.com:443/admission")).ok, true);
  // Paths stay case-sensitive.
  assertFails(verify(tagged("https://relay.example.com/Admission")), /does not match/);
  assertFails(verify(tagged("not a url")), /u tag is not a URL/);
});

Deno.test("nip98: normalizeUrl lower-cases scheme and host, drops query and trailing slash", () => {
  assert.equal(normalizeUrl("HTTP://Example.COM/"), "http://example.com");
  assert.equal(normalizeUrl("http://example.com:80/a/b/?q=1#f"), "http://example.com/a/b");
  assert.equal(normalizeUrl("http://127.0.0.1:7777/Path"), "http://127.0.0.1:7777/Path");
  assert.throws(() => normalizeUrl("relative/path"));
});

Deno.test("nip98: a method tag for another method is rejected", () => {
  assertFails(verify(header(event()), { method: "DELETE" }), /method POST does not match DELETE/);
  assertFails(verify(header(event({}, [["u", URL_]])), {}, null), /no method tag/);
});

Deno.test("nip98: a body without a payload tag is rejected", () => {
  const ev = event({}, [["u", URL_], ["method", "POST"]]);
  assertFails(verify(header(ev)), /no payload tag/);
});

Deno.test("nip98: a payload tag that is not the body's hash is rejected", () => {
  const other = new TextEncoder().encode('{"peerId":"someone-else"}');
  assertFails(verify(header(event()), {}, other), /not the SHA-256 of the request body/);
});

Deno.test("nip98: a body-less request accepts no payload tag or the empty-body hash only", () => {
  const get = (tags: string[][]) => verify(header(event({}, tags)), { method: "GET" }, null);
  assert.equal(get([["u", URL_], ["method", "GET"]]).ok, true);
  assert.equal(
    get([["u", URL_], ["method", "GET"], ["payload", sha256Hex(new Uint8Array())]]).ok,
    true,
  );
  assertFails(
    get([["u", URL_], ["method", "GET"], ["payload", sha256Hex(BODY)]]),
    /empty request body/,
  );
});

Deno.test("nip98: a bad signature is rejected", () => {
  const ev = event();
  const sig = (ev.sig[0] === "0" ? "1" : "0") + ev.sig.slice(1);
  assertFails(verify(header({ ...ev, sig })), /signature is invalid/);
});

Deno.test("nip98: content or tags changed after signing are rejected", () => {
  const ev = event();
  assertFails(verify(header({ ...ev, content: "tampered" })), /signature is invalid/);
  const tags = [["u", "https://relay.example.com/other"], ev.tags[1], ev.tags[2]];
  assertFails(
    verify(header({ ...ev, tags }), { url: "https://relay.example.com/other" }),
    /signature is invalid/,
  );
});

Deno.test("nip98: an event of another kind is rejected", () => {
  assertFails(verify(header(event({ kind: 22242 }))), /kind is 22242, expected 27235/);
});

Deno.test("nip98: a header over 64 KiB is rejected before decoding", () => {
  const big = "Nostr " + "A".repeat(64 * 1024);
  assertFails(verify(big), /over the 64 KiB limit/);
});

Deno.test("nip98: missing, non-Nostr, non-base64, non-JSON and non-event headers are rejected", () => {
  assertFails(verify(null), /missing Authorization/);
  assertFails(verify("Bearer abc"), /not "Nostr <base64 event>"/);
  assertFails(verify("Nostr !!not*base64!!"), /not valid base64/);
  assertFails(verify(`Nostr ${btoa("hello, world")}`), /not JSON/);
  assertFails(verify(`Nostr ${btoa('{"kind":27235}')}`), /not a Nostr event: event id/);
});

Deno.test("nip98: a NIP-OA auth tag reports the owner as delegatedBy", () => {
  const owner = getPublicKey(Uint8Array.from({ length: 32 }, (_, i) => 100 + i));
  const tags = [
    ["u", URL_],
    ["method", "POST"],
    ["payload", sha256Hex(BODY)],
    ["auth", owner, "kind=27235", "ab".repeat(64)],
  ];
  const r = verify(header(event({}, tags)));
  assert.equal(r.ok, true);
  if (r.ok) assert.equal(r.delegatedBy, owner);
});

Deno.test("nip98: malformed or repeated NIP-OA auth tags are rejected", () => {
  const base = [["u", URL_], ["method", "POST"], ["payload", sha256Hex(BODY)]];
  assertFails(verify(header(event({}, [...base, ["auth", "not-a-key"]]))), /malformed NIP-OA/);
  const owner = "a".repeat(64);
  assertFails(
    verify(header(event({}, [...base, ["auth", owner], ["auth", owner]]))),
    /2 NIP-OA auth tags/,
  );
});

Deno.test("nip98: repeated u tags are rejected", () => {
  const tags = [["u", URL_], ["u", "https://evil.example.com/"], ["method", "POST"], [
    "payload",
    sha256Hex(BODY),
  ]];
  assertFails(verify(header(event({}, tags))), /2 "u" tags/);
});
