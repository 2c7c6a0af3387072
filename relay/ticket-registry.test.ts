import assert from "node:assert/strict";
import { createTicketRegistry, createTicketStore } from "./ticket-registry.ts";
import { openDatabaseFile } from "./db.ts";

const T0 = 1_700_000_000;

function fakeMembers(...pubkeys: string[]) {
  const set = new Set(pubkeys);
  return { set, isMember: (p: string) => set.has(p) };
}

Deno.test("a ticket is live until it expires and while its holder is a member", () => {
  const members = fakeMembers("alice");
  const r = createTicketRegistry(members);
  r.issue("alice", "peer-a", T0 + 300);
  assert.equal(r.isLive("peer-a", T0 + 299), true);
  assert.equal(r.isLive("peer-unknown", T0), false);
  members.set.delete("alice"); // removed behind the registry's back: still not live
  assert.equal(r.isLive("peer-a", T0 + 1), false);
  assert.equal(r.liveCount(T0 + 1), 0);
  members.set.add("alice");
  assert.equal(r.isLive("peer-a", T0 + 300), false);
  assert.equal(r.liveCount(T0), 0, "the expired entry was dropped");
});

Deno.test("a renewed ticket replaces the old one", () => {
  const r = createTicketRegistry(fakeMembers("alice"));
  r.issue("alice", "peer-a", T0 + 10);
  r.issue("alice", "peer-a", T0 + 300);
  assert.equal(r.isLive("peer-a", T0 + 100), true);
  assert.equal(r.liveCount(T0 + 100), 1);
});

Deno.test("revocation returns the peers whose connections must close", () => {
  const members = fakeMembers("alice", "bob");
  const r = createTicketRegistry(members);
  r.issue("alice", "peer-a", T0 + 300);
  r.issue("bob", "peer-b", T0 + 300);
  assert.deepEqual(r.revokeMember("alice"), ["peer-a"]);
  assert.equal(r.isLive("peer-a", T0), false);
  members.set.delete("bob");
  assert.deepEqual(r.revokeNonMembers(), [{
    member: "bob",
    peerId: "peer-b",
    expiresAt: T0 + 300,
  }]);
  assert.equal(r.liveCount(T0), 0);
});

Deno.test("--open: membership is not required", () => {
  const r = createTicketRegistry(fakeMembers(), { open: true });
  r.issue("anyone", "peer-x", T0 + 300);
  assert.equal(r.isLive("peer-x", T0), true);
  assert.deepEqual(r.revokeNonMembers(), []);
});

Deno.test("with a store, issued tickets outlive the registry; expired and revoked ones do not", () => {
  const db = openDatabaseFile(":memory:");
  try {
    const members = fakeMembers("alice", "bob", "carol");
    const before = createTicketRegistry(members, { store: createTicketStore(db) });
    before.issue("alice", "peer-a", T0 + 300);
    before.issue("bob", "peer-b", T0 + 300);
    before.issue("carol", "peer-c", T0 + 10);
    before.revokeMember("bob");
    assert.equal(before.isLive("peer-c", T0 + 20), false); // expired: dropped from the store too
    // A restarted relay: a new registry on the same database.
    const after = createTicketRegistry(members, { store: createTicketStore(db) });
    assert.equal(after.isLive("peer-a", T0 + 299), true);
    assert.equal(after.isLive("peer-b", T0), false);
    assert.deepEqual(createTicketStore(db).all().map((t) => t.peerId), ["peer-a"]);
  } finally {
    db.close();
  }
});
