import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  DATABASE_FILE,
  migrate,
  openDatabaseFile,
  openRelayDatabase,
  SCHEMA_VERSION,
  schemaVersion,
  transaction,
} from "./db.ts";

Deno.test("openRelayDatabase creates the file in WAL mode with synchronous FULL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-db-" });
  try {
    const db = openRelayDatabase(join(dir, "nested"));
    assert.ok(existsSync(join(dir, "nested", DATABASE_FILE)));
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    assert.equal(Number(db.prepare("PRAGMA synchronous").get()?.synchronous), 2); // FULL
    assert.equal(schemaVersion(db), SCHEMA_VERSION);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
      .map((r) => r.name);
    for (const t of ["events", "event_tags", "deletions", "members", "relay_key"]) {
      assert.ok(tables.includes(t), `missing table ${t}`);
    }
    db.close();
    // Reopening runs no migration twice.
    const again = openRelayDatabase(join(dir, "nested"));
    assert.equal(schemaVersion(again), SCHEMA_VERSION);
    again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a database from a newer Grove is refused, not touched", () => {
  const db = openDatabaseFile(":memory:");
  db.exec(`UPDATE schema_version SET version = ${SCHEMA_VERSION + 1}`);
  assert.throws(
    () => migrate(db),
    new RegExp(
      `schema version ${
        SCHEMA_VERSION + 1
      }, newer than this Grove understands \\(${SCHEMA_VERSION}\\)`,
    ),
  );
  db.close();
});

Deno.test("transaction rolls back when its function throws", () => {
  const db = openDatabaseFile(":memory:");
  assert.throws(() =>
    transaction(db, () => {
      db.prepare("INSERT INTO members (pubkey, role, added_at) VALUES ('x', 'member', 1)").run();
      throw new Error("boom");
    }), /boom/);
  assert.equal(db.prepare("SELECT count(*) AS n FROM members").get()?.n, 0);
  db.close();
});

Deno.test("openRelayDatabase makes its folder 0700 and the database, -wal and -shm 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-db-" });
  try {
    const data = join(dir, "fresh");
    const db = openRelayDatabase(data);
    db.exec("CREATE TABLE IF NOT EXISTS t (x)"); // a write, so the -wal exists
    const mode = (p: string) => (Deno.statSync(p).mode ?? 0) & 0o777;
    assert.equal(mode(data), 0o700);
    for (const f of [DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`]) {
      assert.equal(mode(join(data, f)), 0o600, f);
    }
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
