import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import type { NostrEvent } from "../protocol/mod.ts";
import { type RelayLimits, resolveLimits } from "./config.ts";
import { type Connection, createConnection } from "./connection.ts";
import { openDatabaseFile } from "./db.ts";
import { createEventStore } from "./event-store.ts";
import { createSubscriptionHub, type SubscriptionHub } from "./subscriptions.ts";
import { createWritePolicy } from "./write-policy.ts";

const NOW = 1_700_000_000;
const URL_ = "ws://127.0.0.1:7777/";
const relaySk = generateSecretKey();
const memberSk = generateSecretKey();
const otherMemberSk = generateSecretKey();
const strangerSk = generateSecretKey();
const MEMBER = getPublicKey(memberSk);
const OTHER = getPublicKey(otherMemberSk);

/** A signed event as a client sends it: plain JSON, no cached verification. */
function sign(sk: Uint8Array, kind: number, tags: string[][] = [], content = "", at = NOW) {
  return JSON.parse(
    JSON.stringify(finalizeEvent({ kind, created_at: at, tags, content }, sk)),
  ) as NostrEvent;
}

interface Client {
  conn: Connection;
  out: unknown[][];
  send(msg: unknown[]): void;
  last(): unknown[];
  auth(sk: Uint8Array, relay?: string, at?: number): unknown[];
}

function setup(
  opts: { limits?: Partial<RelayLimits>; open?: boolean; reports?: NostrEvent[] } = {},
) {
  const clock = { t: NOW };
  const store = createEventStore(openDatabaseFile(":memory:"));
  const hub: SubscriptionHub = createSubscriptionHub();
  const members = new Set([MEMBER, OTHER]);
  const isMember = (pk: string) => members.has(pk);
  const policy = createWritePolicy({
    relayPubkey: getPublicKey(relaySk),
    open: opts.open ?? false,
    isMember,
    meshReport: (ev) => {
      opts.reports?.push(ev);
      return ev.content === "bad" ? "peerId is not the author's key" : undefined;
    },
  });
  const limits = resolveLimits(opts.limits);
  const client = (): Client => {
    const out: unknown[][] = [];
    // Through JSON, as on the wire.
    const conn = createConnection((m) => out.push(JSON.parse(JSON.stringify(m))), {
      store,
      subscriptions: hub,
      policy,
      isMember,
      relayUrls: [URL_],
      limits,
      now: () => clock.t,
    });
    conn.open();
    const c: Client = {
      conn,
      out,
      send: (msg) => conn.receive(JSON.stringify(msg)),
      last: () => out[out.length - 1],
      auth(sk, relay = URL_, at = clock.t) {
        const challenge = out.find((m) => m[0] === "AUTH")![1] as string;
        c.send(["AUTH", sign(sk, 22242, [["relay", relay], ["challenge", challenge]], "", at)]);
        return c.last();
      },
    };
    return c;
  };
  return { clock, store, hub, members, client };
}

function okOf(msg: unknown[]): [boolean, string] {
  assert.equal(msg[0], "OK", `expected OK, got ${JSON.stringify(msg)}`);
  return [msg[2] as boolean, msg[3] as string];
}

Deno.test("connection: AUTH challenge on open; a member's EVENT is OK, then duplicate", () => {
  const { client } = setup();
  const c = client();
  assert.equal(c.out[0][0], "AUTH");
  assert.match(c.out[0][1] as string, /^[0-9a-f]{32}$/);
  assert.deepEqual(okOf(c.auth(memberSk)), [true, ""]);
  assert.equal(c.conn.authed(), MEMBER);
  const note = sign(memberSk, 1, [], "hello");
  c.send(["EVENT", note]);
  assert.deepEqual(c.last(), ["OK", note.id, true, ""]);
  c.send(["EVENT", note]);
  const [ok, msg] = okOf(c.last());
  assert.equal(ok, true);
  assert.match(msg, /^duplicate:/);
});

Deno.test("connection: a tampered id, a bad signature and a bad shape are refused as invalid", () => {
  const { client } = setup();
  const c = client();
  c.auth(memberSk);
  const note = sign(memberSk, 1, [], "hello");
  c.send(["EVENT", { ...note, content: "changed" }]);
  assert.deepEqual(okOf(c.last()), [false, "invalid: event id does not match its content"]);
  const other = sign(memberSk, 1, [], "other");
  c.send(["EVENT", { ...note, sig: other.sig }]);
  assert.deepEqual(okOf(c.last()), [false, "invalid: bad signature"]);
  c.send(["EVENT", { ...note, tags: [["p", 5]] }]);
  assert.match(okOf(c.last())[1], /^invalid: event tags\[0\]/);
  c.send(["EVENT", { ...note, created_at: "1" }]);
  assert.match(okOf(c.last())[1], /^invalid: event created_at/);
  c.send(["EVENT", { ...note, pubkey: note.pubkey.toUpperCase() }]);
  assert.match(okOf(c.last())[1], /^invalid: event pubkey/);
  c.send(["EVENT", 42]);
  assert.deepEqual(c.last(), ["NOTICE", "invalid: event is not a JSON object"]);
});

Deno.test("connection: writes need an authenticated member", () => {
  const { client } = setup();
  const c = client();
  const note = sign(memberSk, 1, [], "hi");
  c.send(["EVENT", note]);
  assert.match(okOf(c.last())[1], /^auth-required: /);
  const s = client();
  s.auth(strangerSk);
  s.send(["EVENT", sign(strangerSk, 1)]);
  assert.match(okOf(s.last())[1], /^restricted: /);
  // A stranger cannot relay a member's event either: the connection's key must be a member.
  s.send(["EVENT", note]);
  assert.match(okOf(s.last())[1], /^restricted: /);
});

Deno.test("connection: --open lets anyone write", () => {
  const { client } = setup({ open: true });
  const c = client();
  const note = sign(strangerSk, 1, [], "hi");
  c.send(["EVENT", note]);
  assert.deepEqual(c.last(), ["OK", note.id, true, ""]);
});

Deno.test("connection: AUTH refuses a wrong challenge, another relay and a stale event", () => {
  const { client, clock } = setup();
  const c = client();
  c.send(["AUTH", sign(memberSk, 22242, [["relay", URL_], ["challenge", "nope"]])]);
  assert.deepEqual(okOf(c.last()), [false, "invalid: the challenge does not match"]);
  assert.match(okOf(c.auth(memberSk, "wss://elsewhere.example/"))[1], /does not name this relay/);
  assert.match(okOf(c.auth(memberSk, URL_, clock.t - 601))[1], /created_at/);
  assert.equal(c.conn.authed(), undefined);
  // The relay URL is compared normalized: no trailing slash, upper-case host.
  assert.deepEqual(okOf(c.auth(memberSk, "ws://127.0.0.1:7777")), [true, ""]);
  assert.equal(c.conn.authed(), MEMBER);
});

Deno.test("connection: REQ sends stored events, EOSE, then live ones; CLOSE ends it", () => {
  const { client } = setup();
  const writer = client();
  writer.auth(memberSk);
  const first = sign(memberSk, 1, [["t", "grove"]], "one", NOW - 10);
  writer.send(["EVENT", first]);
  const reader = client();
  reader.send(["REQ", "s1", { kinds: [1], "#t": ["grove"] }]);
  assert.deepEqual(reader.out.slice(1), [["EVENT", "s1", first], ["EOSE", "s1"]]);
  const second = sign(memberSk, 1, [["t", "grove"]], "two");
  writer.send(["EVENT", second]);
  assert.deepEqual(reader.last(), ["EVENT", "s1", second]);
  writer.send(["EVENT", sign(memberSk, 1, [["t", "other"]], "three")]);
  assert.deepEqual(reader.last(), ["EVENT", "s1", second], "a non-matching event is not sent");
  reader.send(["CLOSE", "s1"]);
  const before = reader.out.length;
  writer.send(["EVENT", sign(memberSk, 1, [["t", "grove"]], "four")]);
  assert.equal(reader.out.length, before);
});

Deno.test("connection: REQ refusals end in CLOSED with a reason", () => {
  const { client } = setup({ limits: { maxSubscriptions: 2, maxFilters: 2 } });
  const c = client();
  c.send(["REQ", "a".repeat(65), {}]);
  assert.match(c.last()[2] as string, /^invalid: subscription ids/);
  c.send(["REQ", "x"]);
  assert.deepEqual(c.last(), ["CLOSED", "x", "invalid: REQ needs at least one filter"]);
  c.send(["REQ", "x", {}, {}, {}]);
  assert.deepEqual(c.last(), ["CLOSED", "x", "invalid: at most 2 filters per REQ"]);
  c.send(["REQ", "x", { kinds: ["1"] }]);
  assert.match(c.last()[2] as string, /^invalid: kinds/);
  c.send(["REQ", "a", {}]);
  c.send(["REQ", "b", {}]);
  c.send(["REQ", "a", { kinds: [1] }]); // replacing an open one is fine
  assert.deepEqual(c.last(), ["EOSE", "a"]);
  c.send(["REQ", "c", {}]);
  assert.deepEqual(c.last(), ["CLOSED", "c", "error: at most 2 open subscriptions; CLOSE one"]);
});

Deno.test("connection: malformed frames get a NOTICE and the connection stays usable", () => {
  const { client } = setup({ limits: { maxMessageLength: 1000 } });
  const c = client();
  for (const frame of ["{not json", '{"a":1}', "[]", "[1,2]", '["NOPE"]', "null"]) {
    c.conn.receive(frame);
    assert.equal(c.last()[0], "NOTICE", frame);
    assert.match(c.last()[1] as string, /^invalid: /);
  }
  c.conn.receive(new Uint8Array([1, 2, 3]));
  assert.match(c.last()[1] as string, /binary/);
  c.conn.receive(JSON.stringify(["REQ", "big", { "#t": ["x".repeat(1000)] }]));
  assert.deepEqual(c.last(), [
    "NOTICE",
    "invalid: message is larger than 1000 bytes (max_message_length)",
  ]);
  // Multi-byte characters count as bytes: 400 × "é" is 800 bytes, 400 characters.
  c.conn.receive(JSON.stringify(["REQ", "big", { "#t": ["é".repeat(400)] }]));
  assert.equal(c.last()[0], "EOSE");
  c.conn.receive(JSON.stringify(["REQ", "big", { "#t": ["é".repeat(500)] }]));
  assert.equal(c.last()[0], "NOTICE");
  c.send(["COUNT", "n", {}]);
  assert.deepEqual(c.last(), ["CLOSED", "n", "invalid: COUNT is not supported"]);
  c.send(["REQ", "ok", {}]);
  assert.deepEqual(c.last(), ["EOSE", "ok"]);
});

Deno.test("connection: EVENT and REQ are rate-limited per connection", () => {
  const { client, clock } = setup({ limits: { eventsPerMinute: 60, reqsPerMinute: 60 } });
  const c = client();
  c.auth(memberSk);
  const answers = [];
  for (let i = 0; i < 8; i++) {
    c.send(["EVENT", sign(memberSk, 1, [], `n${i}`)]);
    answers.push(okOf(c.last())[1]);
  }
  // 60 per minute: a burst of 6 (a tenth of a minute's worth), then one a second.
  assert.equal(answers.filter((m) => m === "").length, 6);
  assert.match(answers[7], /^rate-limited: /);
  for (let i = 0; i < 7; i++) c.send(["REQ", `r${i}`, {}]);
  assert.match(c.last()[2] as string, /^rate-limited: /);
  clock.t += 2; // one token a second
  c.send(["REQ", "later", {}]);
  assert.deepEqual(c.last(), ["EOSE", "later"]);
  // Another connection has its own buckets.
  const d = client();
  d.send(["REQ", "fresh", {}]);
  assert.deepEqual(d.last(), ["EOSE", "fresh"]);
});

Deno.test("connection: NIP-70 protected events only from their authenticated author", () => {
  const { client } = setup();
  const c = client();
  c.auth(otherMemberSk);
  const mine = sign(memberSk, 1, [["-"]], "protected");
  c.send(["EVENT", mine]);
  assert.deepEqual(okOf(c.last()), [
    false,
    "auth-required: this event may only be published by its author",
  ]);
  const d = client();
  d.auth(memberSk);
  d.send(["EVENT", mine]);
  assert.deepEqual(d.last(), ["OK", mine.id, true, ""]);
});

Deno.test("connection: mesh kinds are blocked from clients; reads need an authenticated member", () => {
  const { client, store } = setup();
  const status = sign(relaySk, 30621, [["-"], ["d", "relay-mesh"]], "{}");
  assert.equal(store.save(status, NOW).ok, true);
  const list = sign(relaySk, 13534, [["-"], ["member", MEMBER]]);
  assert.equal(store.save(list, NOW).ok, true);

  const stranger = client();
  stranger.auth(memberSk);
  stranger.send(["EVENT", sign(memberSk, 30621, [["d", "relay-mesh"]], "{}")]);
  assert.match(okOf(stranger.last())[1], /^blocked: only the relay publishes kind 30621/);
  stranger.send(["EVENT", sign(memberSk, 24625, [])]);
  assert.match(okOf(stranger.last())[1], /^blocked: tickets/);
  stranger.send(["EVENT", sign(memberSk, 13534, [])]);
  assert.match(okOf(stranger.last())[1], /^blocked: /);

  const anon = client();
  anon.send(["REQ", "m", { kinds: [30621] }]);
  assert.match(anon.last()[2] as string, /^auth-required: /);
  assert.equal(anon.last()[0], "CLOSED");
  const outsider = client();
  outsider.auth(strangerSk);
  outsider.send(["REQ", "m", { kinds: [1] }, { kinds: [13534] }]);
  assert.deepEqual(outsider.last()[0], "CLOSED");
  assert.match(outsider.last()[2] as string, /^restricted: /);
  // A filter without kinds is answered, with the mesh kinds left out.
  outsider.send(["REQ", "all", {}]);
  assert.deepEqual(outsider.out.slice(-1), [["EOSE", "all"]]);
  assert.ok(!outsider.out.some((m) => m[0] === "EVENT"));

  const member = client();
  member.auth(memberSk);
  member.send(["REQ", "m", { kinds: [30621, 13534] }]);
  const got = member.out.filter((m) => m[0] === "EVENT").map((m) => (m[2] as NostrEvent).id);
  assert.deepEqual(new Set(got), new Set([status.id, list.id]));
});

Deno.test("connection: serve reports go to the mesh status and live only to members", () => {
  const reports: NostrEvent[] = [];
  const { client, members } = setup({ reports });
  const reader = client();
  reader.auth(otherMemberSk);
  reader.send(["REQ", "r", { kinds: [24620] }]);
  const outsider = client();
  outsider.send(["REQ", "all", {}]); // kind-less: would match, must not receive 24620

  const c = client();
  c.auth(memberSk);
  const report = sign(memberSk, 24620, [], "{}");
  c.send(["EVENT", report]);
  assert.deepEqual(c.last(), ["OK", report.id, true, ""]);
  assert.deepEqual(reports.map((r) => r.id), [report.id]);
  assert.deepEqual(reader.last(), ["EVENT", "r", report]);
  assert.deepEqual(outsider.last(), ["EOSE", "all"]);

  const bad = sign(memberSk, 24620, [], "bad");
  c.send(["EVENT", bad]);
  assert.deepEqual(okOf(c.last()), [false, "invalid: peerId is not the author's key"]);
  assert.deepEqual(reader.last(), ["EVENT", "r", report], "a refused report is not broadcast");

  // Membership is checked per delivery: a removed member stops receiving at once.
  members.delete(OTHER);
  c.send(["EVENT", sign(memberSk, 24620, [], "{ }")]);
  assert.deepEqual(reader.last(), ["EVENT", "r", report]);
});

Deno.test("connection: events too far in the future, with too many tags or too long are invalid", () => {
  const { client } = setup({ limits: { maxEventTags: 3, maxContentLength: 10 } });
  const c = client();
  c.auth(memberSk);
  c.send(["EVENT", sign(memberSk, 1, [], "", NOW + 3600)]);
  assert.match(okOf(c.last())[1], /^invalid: created_at is more than 15 minutes/);
  c.send(["EVENT", sign(memberSk, 1, [["a"], ["b"], ["c"], ["d"]])]);
  assert.deepEqual(okOf(c.last()), [false, "invalid: more than 3 tags"]);
  c.send(["EVENT", sign(memberSk, 1, [], "12345678901")]);
  assert.deepEqual(okOf(c.last()), [false, "invalid: content longer than 10 characters"]);
  c.send(["EVENT", sign(memberSk, 22242, [])]);
  assert.match(okOf(c.last())[1], /^invalid: kind 22242/);
});

Deno.test("connection: after close, frames are ignored and live delivery stops", () => {
  const { client, hub } = setup();
  const c = client();
  c.send(["REQ", "s", {}]);
  assert.equal(hub.size(), 1);
  c.conn.close();
  assert.equal(hub.size(), 0);
  const n = c.out.length;
  c.send(["REQ", "t", {}]);
  assert.equal(c.out.length, n);
});

Deno.test("connection: AUTH is rate-limited, and the accepted AUTH again costs no check", () => {
  const { client } = setup({ limits: { authsPerMinute: 60 } }); // burst 6, then 1 a second
  const c = client();
  const challenge = c.out[0][1] as string;
  const auth = (sk: Uint8Array) => sign(sk, 22242, [["relay", URL_], ["challenge", challenge]]);
  const [mine, other] = [auth(memberSk), auth(otherMemberSk)];
  const answers = [];
  for (let i = 0; i < 20; i++) {
    c.send(["AUTH", i % 2 === 0 ? mine : other]);
    answers.push(okOf(c.last()));
  }
  assert.equal(answers.filter(([ok]) => ok).length, 6, "the burst, then refusals");
  for (const [ok, msg] of answers.slice(6)) {
    assert.deepEqual([ok, msg], [false, "rate-limited: slow down, too many AUTH messages"]);
  }
  assert.equal(c.conn.authed(), OTHER, "the last accepted AUTH counts");
  const { client: fresh } = setup({ limits: { authsPerMinute: 6000 } });
  const d = fresh();
  const again = sign(memberSk, 22242, [["relay", URL_], ["challenge", d.out[0][1] as string]]);
  d.send(["AUTH", again]);
  assert.deepEqual(okOf(d.last()), [true, ""]);
  // The same event with a broken signature: answered from the id, without a check.
  d.send(["AUTH", { ...again, sig: "00".repeat(64) }]);
  assert.deepEqual(okOf(d.last()), [true, "duplicate: already authenticated with this event"]);
  assert.equal(d.conn.authed(), MEMBER);
});

Deno.test("connection: subscriptions' filters together fit max_filter_bytes", () => {
  const { client } = setup({ limits: { maxFilterBytes: 20_000 } });
  const c = client();
  const authors = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => (seed * 1000 + i).toString(16).padStart(64, "0"));
  c.send(["REQ", "a", { authors: authors(140, 1) }]); // ~9.4 KB
  assert.deepEqual(c.last(), ["EOSE", "a"]);
  c.send(["REQ", "b", { authors: authors(140, 2) }]);
  assert.deepEqual(c.last(), ["EOSE", "b"]);
  c.send(["REQ", "c", { authors: authors(140, 3) }]);
  assert.equal(c.last()[0], "CLOSED");
  assert.match(c.last()[2] as string, /^error: .* over its 20000 \(max_filter_bytes\)/);
  // Replacing a subscription counts its new filters instead of the old ones.
  c.send(["REQ", "b", { authors: authors(10, 4) }]);
  assert.deepEqual(c.last(), ["EOSE", "b"]);
  c.send(["REQ", "c", { authors: authors(140, 3) }]);
  assert.deepEqual(c.last(), ["EOSE", "c"]);
  // CLOSE frees its share; a refused replacement ends the subscription it would replace.
  c.send(["CLOSE", "a"]);
  c.send(["REQ", "d", { authors: authors(140, 5) }]);
  assert.deepEqual(c.last(), ["EOSE", "d"]);
  c.send(["REQ", "b", { authors: authors(200, 6) }]);
  assert.equal(c.last()[0], "CLOSED");
  assert.equal(c.conn.subscriptionCount(), 2, "c and d; b ended with its CLOSED");
});

Deno.test("connection: a stranger's EVENT is refused before its signature is checked", () => {
  const { client } = setup();
  const c = client();
  const forged = { ...sign(memberSk, 1, [], "hello"), sig: "00".repeat(64) };
  c.send(["EVENT", forged]);
  assert.match(okOf(c.last())[1], /^auth-required: /, "refused for who sends, not checked");
  c.auth(strangerSk);
  c.send(["EVENT", forged]);
  assert.match(okOf(c.last())[1], /^restricted: /);
  c.send(["EVENT", { ...forged, kind: 22242 }]);
  assert.match(okOf(c.last())[1], /^invalid: kind 22242/, "kind rules answer as before");
  const { client: member } = setup();
  const m = member();
  m.auth(memberSk);
  m.send(["EVENT", forged]);
  assert.deepEqual(okOf(m.last()), [false, "invalid: bad signature"], "a member's is checked");
});
