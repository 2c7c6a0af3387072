// The relay's embedded database: one SQLite file per data directory, holding
// events, members, issued tickets and the relay key. Opened once per process and shared by
// the event store, the member store and the relay key loader.

// @ts-expect-error: the project's @types/node 20 has no node:sqlite declarations
import { DatabaseSync as SqliteDatabase } from "node:sqlite";
import { join } from "node:path";
import type { Logger } from "../protocol/mod.ts";
import { secureDataDir, tightenFiles } from "./data-dir.ts";

export type SqlValue = null | number | bigint | string | Uint8Array;
export type SqlRow = Record<string, SqlValue>;

/** The part of node:sqlite's StatementSync the relay uses. */
export interface StatementSync {
  run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: SqlValue[]): SqlRow | undefined;
  all(...params: SqlValue[]): SqlRow[];
}

/** The part of node:sqlite's DatabaseSync the relay uses (typed here because
 * the project's @types/node predates node:sqlite). Import this type from
 * relay/db.ts rather than from node:sqlite. */
export interface DatabaseSync {
  exec(sql: string): void;
  prepare(sql: string): StatementSync;
  close(): void;
  readonly isOpen: boolean;
}

export const DATABASE_FILE = "relay.sqlite";

/** Each entry moves the schema from version i to i + 1. Append, never edit. */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE events (
    id TEXT PRIMARY KEY,
    pubkey TEXT NOT NULL,
    kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    content TEXT NOT NULL,
    tags TEXT NOT NULL,          -- JSON array of arrays, as received
    sig TEXT NOT NULL,
    d_tag TEXT,                  -- first d tag value ('' when none) for addressable kinds
    expires_at INTEGER           -- NIP-40 expiration, null when none
  ) WITHOUT ROWID;
  CREATE INDEX events_kind_created ON events (kind, created_at);
  CREATE INDEX events_pubkey_created ON events (pubkey, created_at);
  CREATE INDEX events_created ON events (created_at);
  CREATE INDEX events_address ON events (pubkey, kind, d_tag);
  CREATE INDEX events_expires ON events (expires_at) WHERE expires_at IS NOT NULL;

  -- Single-letter tags (first value only, as NIP-01 filters match) so #x
  -- filters run in SQL.
  CREATE TABLE event_tags (
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL
  );
  CREATE INDEX event_tags_name_value ON event_tags (name, value);
  CREATE INDEX event_tags_event ON event_tags (event_id);
  CREATE TRIGGER events_delete_tags AFTER DELETE ON events BEGIN
    DELETE FROM event_tags WHERE event_id = old.id;
  END;

  -- NIP-09 tombstones: an event id, or an address 'kind:pubkey:d', deleted by
  -- pubkey. Kept so that a deleted event sent again is refused.
  CREATE TABLE deletions (
    target TEXT NOT NULL,
    pubkey TEXT NOT NULL,
    created_at INTEGER NOT NULL,  -- of the deletion request; for addresses the cut-off
    PRIMARY KEY (target, pubkey)
  ) WITHOUT ROWID;

  CREATE TABLE members (
    pubkey TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    added_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE relay_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
  );
  `,
  // Issued tickets, so a restarted relay still admits the peers holding one (ticket-registry.ts).
  `
  CREATE TABLE tickets (
    peer_id TEXT PRIMARY KEY,
    member TEXT NOT NULL,
    expires_at REAL NOT NULL
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens (creating if needed) `${dataDir}/relay.sqlite` and migrates it; the folder is 0700 and
 * the files 0600 (data-dir.ts), looser modes tightened with a warning on `log`.
 */
export function openRelayDatabase(dataDir: string, log?: Logger): DatabaseSync {
  secureDataDir(dataDir, DATABASE_FILE, log);
  const path = join(dataDir, DATABASE_FILE);
  const db = openDatabaseFile(path);
  tightenFiles(path, log); // a -wal or -shm left by an older run keeps its mode when reused
  return db;
}

/** Opens a database at an exact path (":memory:" works, for tests). */
export function openDatabaseFile(path: string): DatabaseSync {
  const db: DatabaseSync = new SqliteDatabase(path);
  try {
    // WAL lets readers run beside the single writer. synchronous=FULL fsyncs
    // the WAL on every commit: with NORMAL a power loss or OS crash can drop
    // the last commits, which would break "a restart loses nothing that was
    // acknowledged with OK true".
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    // The members CLI may write the same file while the relay runs.
    db.exec("PRAGMA busy_timeout = 5000");
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function schemaVersion(db: DatabaseSync): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT version FROM schema_version").get();
  return row === undefined ? 0 : Number(row.version);
}

/** Brings the schema to SCHEMA_VERSION, one migration per transaction. */
export function migrate(db: DatabaseSync): void {
  const found = schemaVersion(db);
  if (found > SCHEMA_VERSION) {
    throw new Error(
      `relay database has schema version ${found}, newer than this Grove understands ` +
        `(${SCHEMA_VERSION}); upgrade Grove or use another data directory`,
    );
  }
  for (let v = found; v < SCHEMA_VERSION; v++) {
    transaction(db, () => {
      db.exec(MIGRATIONS[v]);
      db.exec("DELETE FROM schema_version");
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(v + 1);
    });
  }
}

/** Runs fn inside BEGIN IMMEDIATE … COMMIT; rolls back if it throws. Once it
 * returns, the writes are on disk. */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}
