import assert from "node:assert/strict";
import { openDatabaseFile, openRelayDatabase } from "./db.ts";
import { createMemberStore } from "./members.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const O = "0".repeat(64);

Deno.test("members: add, role change, remove, list, and change listeners", () => {
  const db = openDatabaseFile(":memory:");
  const members = createMemberStore(db);
  let changes = 0;
  const off = members.onChange(() => changes++);

  assert.equal(members.add(A, "member", 100), true);
  assert.equal(members.add(A, "member", 200), false); // nothing changed, no event
  assert.equal(members.role(A), "member");
  assert.equal(members.isMember(A), true);
  assert.equal(members.isMember(B), false);
  assert.equal(members.role(B), undefined);
  assert.equal(changes, 1);

  assert.equal(members.add(A, "admin", 300), true);
  assert.equal(members.role(A), "admin");
  assert.equal(members.add(B, "member", 50), true);
  assert.deepEqual(members.list(), [
    { pubkey: B, role: "member", addedAt: 50 },
    { pubkey: A, role: "admin", addedAt: 100 }, // a role change keeps added_at
  ]);
  assert.equal(changes, 3);

  assert.equal(members.remove(B), true);
  assert.equal(members.remove(B), false);
  assert.equal(members.isMember(B), false);
  assert.equal(changes, 4);

  off();
  members.add(B, "member", 400);
  assert.equal(changes, 4);
  db.close();
});

Deno.test("members: the owner is not demoted by add()", () => {
  const db = openDatabaseFile(":memory:");
  const members = createMemberStore(db);
  assert.equal(members.add(O, "owner", 1), true);
  assert.equal(members.add(O, "member", 2), false);
  assert.equal(members.add(O, "admin", 2), false);
  assert.equal(members.role(O), "owner");
  assert.equal(members.remove(O), true);
  assert.equal(members.add(O, "member", 3), true);
  assert.equal(members.role(O), "member");
  db.close();
});

Deno.test("members: bad pubkeys and roles are refused with clear errors", () => {
  const db = openDatabaseFile(":memory:");
  const members = createMemberStore(db);
  assert.throws(
    () => members.add("npub1xyz", "member", 1),
    /member pubkey must be 64 lowercase hex/,
  );
  assert.throws(() => members.add(A.toUpperCase(), "member", 1), /64 lowercase hex/);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => members.add(A, "root" as any, 1),
    /role must be one of owner, admin, member, not "root"/,
  );
  assert.deepEqual(members.list(), []);
  db.close();
});

Deno.test("members: a failing listener does not stop the others", () => {
  const db = openDatabaseFile(":memory:");
  const members = createMemberStore(db);
  let seen = 0;
  members.onChange(() => {
    throw new Error("listener failed");
  });
  members.onChange(() => seen++);
  assert.throws(() => members.add(A, "member", 1), /listener failed/);
  assert.equal(seen, 1);
  assert.equal(members.isMember(A), true); // the change itself was kept
  db.close();
});

Deno.test("members persist across reopening, and a second handle sees changes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-members-" });
  try {
    const db1 = openRelayDatabase(dir);
    const db2 = openRelayDatabase(dir); // like the members task beside a running relay
    const relay = createMemberStore(db1);
    createMemberStore(db2).add(A, "admin", 10);
    assert.equal(relay.role(A), "admin");
    db1.close();
    db2.close();
    const reopened = createMemberStore(openRelayDatabase(dir));
    assert.deepEqual(reopened.list(), [{ pubkey: A, role: "admin", addedAt: 10 }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
