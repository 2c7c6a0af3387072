import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey, getPublicKey } from "nostr-tools/pure";
import type { NostrEvent } from "../protocol/mod.ts";
import { openDatabaseFile, openRelayDatabase } from "./db.ts";
import { createEventStore, type EventStore } from "./event-store.ts";
import { parseFilter } from "./filter.ts";

const alice = generateSecretKey();
const bob = generateSecretKey();
const ALICE = getPublicKey(alice);
const NOW = 1_700_000_000;

function ev(sk: Uint8Array, kind: number, created_at: number, tags: string[][] = [], content = "") {
  // A plain copy: finalizeEvent marks its result as verified with a symbol.
  return JSON.parse(
    JSON.stringify(finalizeEvent({ kind, created_at, tags, content }, sk)),
  ) as NostrEvent;
}

function memoryStore(defaultLimit?: number): EventStore {
  return createEventStore(openDatabaseFile(":memory:"), { defaultLimit });
}

function ids(events: NostrEvent[]): string[] {
  return events.map((e) => e.id);
}

const q = (raw: unknown) => parseFilter(raw, { maxLimit: 1000 });

Deno.test("save stores regular events and reports duplicates", () => {
  const store = memoryStore();
  const note = ev(alice, 1, NOW, [["t", "x"]], "hello");
  assert.deepEqual(store.save(note, NOW), { ok: true, message: "", stored: true });
  assert.deepEqual(store.save(note, NOW), {
    ok: true,
    message: "duplicate: already have this event",
    stored: false,
  });
  assert.deepEqual(store.query([q({ ids: [note.id] })], NOW), [note]);
  store.close();
});

Deno.test("replaceable kinds keep only the newest version; ties go to the lower id", () => {
  const store = memoryStore();
  const v1 = ev(alice, 0, NOW - 10, [], "v1");
  const v2 = ev(alice, 0, NOW, [], "v2");
  assert.equal(store.save(v1, NOW).stored, true);
  assert.deepEqual(store.save(v2, NOW), { ok: true, message: "", stored: true, replaced: [v1.id] });
  const older = store.save(ev(alice, 0, NOW - 5, [], "late"), NOW);
  assert.deepEqual(older, {
    ok: true,
    message: "duplicate: have a newer version of this event",
    stored: false,
  });
  assert.deepEqual(ids(store.query([q({ kinds: [0], authors: [ALICE] })], NOW)), [v2.id]);

  // Same created_at: the lower id stays, whichever arrives first.
  const [low, high] = [ev(alice, 10002, NOW, [], "a"), ev(alice, 10002, NOW, [], "b")]
    .sort((x, y) => (x.id < y.id ? -1 : 1));
  store.save(high, NOW);
  assert.deepEqual(store.save(low, NOW).replaced, [high.id]);
  assert.equal(store.save(high, NOW).stored, false); // refused as replaced
  assert.deepEqual(ids(store.query([q({ kinds: [10002] })], NOW)), [low.id]);

  // Another author's version is a separate event.
  store.save(ev(bob, 0, NOW - 100, [], "bob"), NOW);
  assert.equal(store.query([q({ kinds: [0] })], NOW).length, 2);
  store.close();
});

Deno.test("addressable kinds are replaced per pubkey, kind and d tag", () => {
  const store = memoryStore();
  const a1 = ev(alice, 30023, NOW - 5, [["d", "post"]], "one");
  const a2 = ev(alice, 30023, NOW, [["d", "post"]], "two");
  const other = ev(alice, 30023, NOW - 5, [["d", "other"]]);
  const noD = ev(alice, 30023, NOW - 5, []);
  const emptyD = ev(alice, 30023, NOW - 1, [["d", ""]]);
  for (const e of [a1, other, noD]) assert.equal(store.save(e, NOW).stored, true);
  assert.deepEqual(store.save(a2, NOW).replaced, [a1.id]);
  assert.deepEqual(store.save(emptyD, NOW).replaced, [noD.id]); // no d tag means d = ""
  assert.deepEqual(ids(store.query([q({ "#d": ["post"] })], NOW)), [a2.id]);
  assert.deepEqual(
    new Set(ids(store.query([q({ kinds: [30023] })], NOW))),
    new Set([a2.id, other.id, emptyD.id]),
  );
  store.close();
});

Deno.test("ephemeral events are acknowledged and never stored", () => {
  const store = memoryStore();
  const e = ev(alice, 24620, NOW, [], "{}");
  assert.deepEqual(store.save(e, NOW), { ok: true, message: "", stored: false });
  assert.deepEqual(store.query([q({ ids: [e.id] })], NOW), []);
  store.close();
});

Deno.test("NIP-09: e tags delete only the author's own events, and they stay deleted", () => {
  const store = memoryStore();
  const mine = ev(alice, 1, NOW - 10, [], "mine");
  const bobs = ev(bob, 1, NOW - 10, [], "bob's");
  store.save(mine, NOW);
  store.save(bobs, NOW);
  const del = ev(alice, 5, NOW, [["e", mine.id], ["e", bobs.id], ["k", "1"]]);
  assert.equal(store.save(del, NOW).stored, true);
  assert.deepEqual(ids(store.query([q({ kinds: [1] })], NOW)), [bobs.id]); // bob's survives
  assert.deepEqual(ids(store.query([q({ kinds: [5] })], NOW)), [del.id]); // request kept
  assert.deepEqual(store.save(mine, NOW), {
    ok: false,
    message: "blocked: deleted by its author",
    stored: false,
  });
  // Bob's event is unaffected by Alice's request, even when sent again.
  assert.equal(store.save(bobs, NOW).message, "duplicate: already have this event");

  // A deletion that arrives before its event still applies.
  const later = ev(alice, 1, NOW - 3, [], "not yet seen");
  store.save(ev(alice, 5, NOW, [["e", later.id]]), NOW);
  assert.equal(store.save(later, NOW).ok, false);
  store.close();
});

Deno.test("NIP-09: deleting a deletion request has no effect", () => {
  const store = memoryStore();
  const note = ev(alice, 1, NOW - 10);
  store.save(note, NOW);
  const del = ev(alice, 5, NOW - 5, [["e", note.id]]);
  store.save(del, NOW);
  store.save(ev(alice, 5, NOW, [["e", del.id]]), NOW);
  assert.equal(store.query([q({ ids: [del.id] })], NOW).length, 1);
  store.close();
});

Deno.test("NIP-09: a tags delete versions up to the request's created_at, own only", () => {
  const store = memoryStore();
  const post = ev(alice, 30023, NOW - 10, [["d", "post"]]);
  const keep = ev(alice, 30023, NOW - 10, [["d", "keep"]]);
  const profile = ev(alice, 0, NOW - 10, [], "{}");
  const bobPost = ev(bob, 30023, NOW - 10, [["d", "post"]]);
  for (const e of [post, keep, profile, bobPost]) store.save(e, NOW);
  const del = ev(alice, 5, NOW - 5, [
    ["a", `30023:${ALICE}:post`],
    ["a", `0:${ALICE}:`],
    ["a", `30023:${bobPost.pubkey}:post`], // someone else's: ignored
  ]);
  store.save(del, NOW);
  assert.deepEqual(
    new Set(ids(store.query([q({ kinds: [0, 30023] })], NOW))),
    new Set([keep.id, bobPost.id]),
  );
  // Versions up to the cut-off are refused; newer versions are new events.
  assert.equal(store.save(ev(alice, 30023, NOW - 6, [["d", "post"]]), NOW).ok, false);
  assert.equal(store.save(ev(alice, 30023, NOW - 5, [["d", "post"]]), NOW).ok, false);
  assert.equal(store.save(ev(alice, 30023, NOW - 4, [["d", "post"]]), NOW).stored, true);
  assert.equal(store.save(ev(alice, 0, NOW - 1, [], "{}"), NOW).stored, true);
  assert.equal(store.save(ev(bob, 30023, NOW - 1, [["d", "post"]]), NOW).stored, true);
  store.close();
});

Deno.test("NIP-40: expired events are refused, hidden and purged", () => {
  const store = memoryStore();
  const exp = (at: number | string) => ev(alice, 1, NOW - 1, [["expiration", String(at)]]);
  assert.deepEqual(store.save(exp(NOW), NOW), {
    ok: false,
    message: "invalid: event has expired",
    stored: false,
  });
  assert.equal(store.save(ev(alice, 20001, NOW, [["expiration", "1"]]), NOW).ok, false);
  assert.match(store.save(exp("soon"), NOW).message, /^invalid: expiration tag/);
  const soon = exp(NOW + 10);
  const never = ev(alice, 1, NOW - 2);
  store.save(soon, NOW);
  store.save(never, NOW);
  assert.deepEqual(ids(store.query([q({})], NOW + 9)), [soon.id, never.id]);
  assert.deepEqual(ids(store.query([q({})], NOW + 10)), [never.id]);
  assert.equal(store.deleteExpired(NOW + 9), 0);
  assert.equal(store.deleteExpired(NOW + 10), 1);
  assert.deepEqual(ids(store.query([q({})], NOW)), [never.id]);
  store.close();
});

Deno.test("query: newest first, ties by id, per-filter limits, OR'ed and deduplicated", () => {
  const store = memoryStore(3);
  const events = [0, 1, 2, 3, 4].map((i) => ev(alice, 1, NOW + i, [], `n${i}`));
  const tied = [ev(bob, 1, NOW + 2, [], "t1"), ev(bob, 1, NOW + 2, [], "t2")];
  for (const e of [...events, ...tied]) store.save(e, NOW);
  const all = store.query([q({ limit: 100 })], NOW);
  const createdAt = all.map((e) => e.created_at);
  assert.deepEqual(createdAt, [...createdAt].sort((a, b) => b - a));
  const sameSecond = all.filter((e) => e.created_at === NOW + 2).map((e) => e.id);
  assert.deepEqual(sameSecond, [...sameSecond].sort());

  assert.deepEqual(ids(store.query([q({ authors: [ALICE], limit: 2 })], NOW)), [
    events[4].id,
    events[3].id,
  ]);
  assert.equal(store.query([q({})], NOW).length, 3); // default limit
  assert.deepEqual(store.query([q({ limit: 0 })], NOW), []);
  // Two filters: each gets its own limit; an event matching both appears once.
  const two = store.query([
    q({ authors: [ALICE], limit: 1 }),
    q({ ids: [events[4].id, events[0].id] }),
  ], NOW);
  assert.deepEqual(ids(two), [events[4].id, events[0].id]);
  assert.deepEqual(ids(store.query([q({ since: NOW + 3, authors: [ALICE] })], NOW)), [
    events[4].id,
    events[3].id,
  ]);
  assert.deepEqual(ids(store.query([q({ until: NOW + 0, kinds: [1] })], NOW)), [events[0].id]);
  assert.deepEqual(store.query([q({ authors: [] })], NOW), []);
  store.close();
});

Deno.test("query: tag filters run on single-letter tags, first value only", () => {
  const store = memoryStore();
  const target = "c".repeat(64);
  const reply = ev(alice, 1, NOW, [["e", target, "", "reply"], ["p", ALICE]]);
  const tagged = ev(bob, 1, NOW - 1, [["t", "grove"], ["t", "llm"], ["E", "upper"]]);
  const long = ev(bob, 1, NOW - 2, [["title", "grove"], ["x", "a", "grove"]]);
  for (const e of [reply, tagged, long]) store.save(e, NOW);
  assert.deepEqual(ids(store.query([q({ "#e": [target] })], NOW)), [reply.id]);
  assert.deepEqual(ids(store.query([q({ "#t": ["llm"] })], NOW)), [tagged.id]);
  assert.deepEqual(ids(store.query([q({ "#E": ["upper"] })], NOW)), [tagged.id]);
  assert.deepEqual(store.query([q({ "#e": ["upper"] })], NOW), []);
  assert.deepEqual(store.query([q({ "#x": ["grove"] })], NOW), []); // not the first value
  assert.deepEqual(ids(store.query([q({ "#t": ["grove"], "#E": ["upper"] })], NOW)), [tagged.id]);
  assert.deepEqual(store.query([q({ "#t": ["grove"], "#p": [ALICE] })], NOW), []);
  // Many values travel as one parameter (no SQLite variable limit).
  const many = Array.from({ length: 40000 }, (_, i) => String(i)).concat(["llm"]);
  assert.deepEqual(ids(store.query([q({ "#t": many })], NOW)), [tagged.id]);
  store.close();
});

Deno.test("an acknowledged event survives closing and reopening the database", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-store-" });
  try {
    const first = createEventStore(openRelayDatabase(dir));
    const note = ev(alice, 1, NOW, [["t", "kept"]], "persist me");
    const profile = ev(alice, 0, NOW, [], "{}");
    const doomed = ev(alice, 1, NOW - 1);
    assert.equal(first.save(note, NOW).ok, true);
    first.save(profile, NOW);
    first.save(doomed, NOW);
    first.save(ev(alice, 5, NOW, [["e", doomed.id]]), NOW);
    first.close();

    const second = createEventStore(openRelayDatabase(dir));
    assert.deepEqual(second.query([q({ "#t": ["kept"] })], NOW), [note]);
    assert.deepEqual(second.query([q({ kinds: [0] })], NOW), [profile]);
    assert.equal(second.save(doomed, NOW).ok, false); // the tombstone persisted too
    assert.equal(second.save(ev(alice, 0, NOW - 1, [], "{}"), NOW).stored, false);
    second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an acknowledged event survives the relay process being killed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-kill-" });
  const note = ev(alice, 1, NOW, [], "acknowledged, then SIGKILL");
  const child = `
    import { openRelayDatabase } from ${JSON.stringify(new URL("./db.ts", import.meta.url).href)};
    import { createEventStore } from ${
    JSON.stringify(new URL("./event-store.ts", import.meta.url).href)
  };
    const store = createEventStore(openRelayDatabase(${JSON.stringify(dir)}));
    const r = store.save(${JSON.stringify(note)}, ${NOW});
    console.log(JSON.stringify(r));
    setInterval(() => {}, 1000); // stay alive without closing the database
  `;
  const script = `${dir}/child.ts`;
  await Deno.writeTextFile(script, child);
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the child relay never answered")), 15000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(JSON.parse(first.value ?? "{}").ok, true);
    proc.kill("SIGKILL");
    await proc.status;
    reader.releaseLock();
    await proc.stdout.cancel().catch(() => {});
    const store = createEventStore(openRelayDatabase(dir));
    assert.deepEqual(store.query([q({ ids: [note.id] })], NOW), [note]);
    store.close();
  } finally {
    try {
      proc.kill("SIGKILL");
    } catch { /* already gone */ }
    await proc.status;
    await Deno.remove(dir, { recursive: true });
  }
});
