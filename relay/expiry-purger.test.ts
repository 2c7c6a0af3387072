import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey } from "nostr-tools/pure";
import type { Logger } from "../protocol/mod.ts";
import { openDatabaseFile } from "./db.ts";
import { createEventStore } from "./event-store.ts";
import { createExpiryPurger } from "./expiry-purger.ts";
import { eventually } from "../tests/support/poll.ts";

const T0 = 1_700_000_000;

function logRecorder() {
  const errors: string[] = [];
  const log: Logger = { info() {}, warn() {}, error: (m, f) => errors.push(`${m} ${f?.error}`) };
  return { log, errors };
}

Deno.test("expiry purger: a round deletes from the file what expired by the clock, no more", () => {
  const store = createEventStore(openDatabaseFile(":memory:"));
  const sk = generateSecretKey();
  const event = (content: string, tags: string[][]) =>
    finalizeEvent({ kind: 1, created_at: T0, tags, content }, sk);
  const brief = event("brief", [["expiration", String(T0 + 10)]]);
  const kept = event("kept", []);
  assert.ok(store.save(brief, T0).ok && store.save(kept, T0).ok);
  let now = T0 + 9.9;
  const purger = createExpiryPurger({ log: logRecorder().log }, { store, now: () => now });

  assert.equal(purger.purge(), 0, "not expired yet");
  now = T0 + 10;
  assert.equal(purger.purge(), 1);
  // Asked as of before it expired, the store no longer has it: it left the file.
  assert.deepEqual(store.query([{ kinds: [1] }], T0).map((e) => e.content), ["kept"]);
  assert.equal(purger.purge(), 0);
});

Deno.test("expiry purger: its timer goes on past a failing round, and stops with the part", async () => {
  let rounds = 0;
  const store = {
    deleteExpired() {
      if (++rounds === 1) throw new Error("database is locked");
      return 0;
    },
  };
  const { log, errors } = logRecorder();
  const purger = createExpiryPurger({ intervalMs: 5, log }, { store, now: () => T0 });
  await purger.start();
  try {
    await eventually(() => rounds >= 2, { what: "no round after the failing one" });
    assert.deepEqual(errors, [
      "the relay failed purging expired events Error: database is locked",
    ]);
  } finally {
    await purger.stop();
  }
});
