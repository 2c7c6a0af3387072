import assert from "node:assert/strict";
import { getPublicKey } from "nostr-tools/pure";
import { openDatabaseFile, openRelayDatabase } from "./db.ts";
import { loadOrCreateRelayKey } from "./relay-key.ts";

Deno.test("the relay key is made once and the same key returns after a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-key-" });
  try {
    const db = openRelayDatabase(dir);
    const key = loadOrCreateRelayKey(db);
    assert.equal(key.length, 32);
    assert.match(getPublicKey(key), /^[0-9a-f]{64}$/);
    assert.deepEqual(loadOrCreateRelayKey(db), key);
    db.close();

    const reopened = openRelayDatabase(dir);
    assert.deepEqual(loadOrCreateRelayKey(reopened), key);
    reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("different data directories get different relay keys", () => {
  const a = openDatabaseFile(":memory:");
  const b = openDatabaseFile(":memory:");
  assert.notDeepEqual(loadOrCreateRelayKey(a), loadOrCreateRelayKey(b));
  a.close();
  b.close();
});

Deno.test("a malformed stored key is an error, not a silent new identity", () => {
  const db = openDatabaseFile(":memory:");
  db.prepare("INSERT INTO relay_key (id, secret) VALUES (1, ?)").run(new Uint8Array(5));
  assert.throws(() => loadOrCreateRelayKey(db), /malformed relay key/);
  db.close();
});
