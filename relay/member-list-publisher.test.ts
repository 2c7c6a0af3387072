// The member list publisher over a real database file, with a second connection to the same file
// standing for the `members` task's process, and a fake clock.
import assert from "node:assert/strict";
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import type { Logger, NostrEvent } from "../protocol/mod.ts";
import { openRelayDatabase } from "./db.ts";
import { createEventStore } from "./event-store.ts";
import { createMemberListPublisher } from "./member-list-publisher.ts";
import { createMemberStore } from "./members.ts";
import { createTicketRegistry } from "./ticket-registry.ts";
import { eventually } from "../tests/support/poll.ts";

const T0 = 1_700_000_000;
const OWNER = getPublicKey(generateSecretKey());
const ALICE = getPublicKey(generateSecretKey());

async function setup(pollMs = 60_000, relaySecret = generateSecretKey()) {
  const dataDir = await Deno.makeTempDir({ prefix: "grove-member-list-" });
  const db = openRelayDatabase(dataDir);
  const store = createEventStore(db);
  const members = createMemberStore(db);
  members.add(OWNER, "owner", T0);
  const registry = createTicketRegistry(members);
  // Another process on the same file: its changes fire none of this process's listeners.
  const otherDb = openRelayDatabase(dataDir);
  const other = createMemberStore(otherDb);
  const published: NostrEvent[] = [];
  const infos: string[] = [];
  const log: Logger = { info: (m) => infos.push(m), warn() {}, error() {} };
  let now = T0;
  const part = (s = relaySecret) =>
    createMemberListPublisher({ relaySecret: s, pollMs, log }, {
      members,
      registry,
      store,
      publish: (ev) => {
        assert.ok(store.save(ev, now).ok);
        published.push(ev);
        infos.push(`published ${listed(ev).length} member(s)`);
      },
      now: () => now,
    });
  const publisher = part();
  return {
    publisher,
    part,
    members,
    other,
    registry,
    published,
    infos,
    clock: (t: number) => (now = t),
    async close() {
      publisher.stop();
      otherDb.close();
      db.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

const listed = (ev: NostrEvent) => ev.tags.filter((t) => t[0] === "member").map((t) => t[1]);

Deno.test("member list: published at start, then again on another process's change", async () => {
  const s = await setup();
  try {
    s.publisher.start();
    assert.equal(s.published.length, 1);
    assert.deepEqual(listed(s.published[0]), [OWNER]);
    assert.equal(s.published[0].created_at, T0);
    assert.equal(s.publisher.check(), false, "nothing changed: nothing published");

    s.other.add(ALICE, "member", T0);
    assert.equal(s.published.length, 1, "no listener of this process saw the other's write");
    s.clock(T0 + 0.5);
    assert.equal(s.publisher.check(), true);
    assert.deepEqual(listed(s.published[1]), [ALICE, OWNER].sort());
    // Same second by the clock, yet strictly newer: a replaceable event's tie goes by id.
    assert.equal(s.published[1].created_at, T0 + 1);

    s.clock(T0 + 30);
    s.other.add(ALICE, "admin", T0); // a role change is a change too
    assert.equal(s.publisher.check(), true);
    assert.equal(s.published[2].created_at, T0 + 30);
    assert.deepEqual(listed(s.published[2]), listed(s.published[1]));
  } finally {
    await s.close();
  }
});

Deno.test("member list: a removal revokes the member's tickets before the list goes out", async () => {
  const s = await setup();
  try {
    s.members.add(ALICE, "member", T0);
    s.publisher.start();
    s.registry.issue(ALICE, "peer-of-alice", T0 + 600);
    s.registry.issue(OWNER, "peer-of-owner", T0 + 600);
    s.other.remove(ALICE);
    assert.equal(s.publisher.check(), true);
    assert.deepEqual(listed(s.published.at(-1)!), [OWNER]);
    assert.deepEqual(s.infos, [
      "published 2 member(s)",
      `revoked the ticket of ${ALICE.slice(0, 8)}… (peer peer-of-…)`,
      "published 1 member(s)",
    ]);
    assert.deepEqual(s.registry.revokeMember(OWNER), ["peer-of-owner"], "the owner's ticket stays");
  } finally {
    await s.close();
  }
});

Deno.test("member list: this process's change goes out at once, another's within a poll", async () => {
  const s = await setup(5);
  try {
    s.publisher.start();
    s.members.add(ALICE, "member", T0);
    assert.equal(s.published.length, 2, "published by the store's onChange, no poll needed");
    s.other.remove(ALICE);
    await eventually(() => s.published.length === 3, { what: "the poll never saw the removal" });
    assert.deepEqual(listed(s.published[2]), [OWNER]);
    s.publisher.stop();
    s.members.add(ALICE, "member", T0);
    assert.equal(s.published.length, 3, "stopped: no longer follows the store");
  } finally {
    await s.close();
  }
});

Deno.test("member list: after a restart the first list is newer than the last one stored", async () => {
  const secret = generateSecretKey();
  const s = await setup(undefined, secret);
  try {
    s.clock(T0 + 100);
    s.publisher.start();
    s.publisher.stop();
    s.clock(T0); // the clock went back, or the restart came within the same second
    const restarted = s.part(secret);
    restarted.start();
    restarted.stop();
    assert.deepEqual(s.published.map((e) => e.created_at), [T0 + 100, T0 + 101]);
  } finally {
    await s.close();
  }
});
