// Stored events with NIP-01 replaceable/addressable/ephemeral semantics,
// NIP-09 deletion requests and NIP-40 expiration. The store trusts its input:
// ids and signatures are checked by the connection before save().

import type { NostrEvent } from "../protocol/mod.ts";
import {
  type DatabaseSync,
  type SqlRow,
  type SqlValue,
  type StatementSync,
  transaction,
} from "./db.ts";
import { type Filter, tagFilters } from "./filter.ts";

export interface SaveResult {
  ok: boolean;
  message: string;
  stored: boolean;
  replaced?: string[];
}

export interface EventStore {
  save(ev: NostrEvent, now: number): SaveResult;
  query(filters: Filter[], now: number): NostrEvent[];
  deleteExpired(now: number): number;
  close(): void;
}

export interface EventStoreOptions {
  /** Results per filter when the filter has no `limit`. */
  defaultLimit?: number;
}

export type EventClass = "regular" | "replaceable" | "ephemeral" | "addressable";

function eventClass(kind: number): EventClass {
  if (kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000)) return "replaceable";
  if (kind >= 20000 && kind < 30000) return "ephemeral";
  if (kind >= 30000 && kind < 40000) return "addressable";
  return "regular";
}

const DELETION_KIND = 5;
const HEX64 = /^[0-9a-f]{64}$/;

/** NIP-40: the expiration timestamp, undefined when absent, NaN when malformed. */
function expirationOf(ev: NostrEvent): number | undefined {
  const tag = ev.tags.find((t) => t[0] === "expiration");
  if (tag === undefined) return undefined;
  return /^\d{1,15}$/.test(tag[1] ?? "") ? Number(tag[1]) : NaN;
}

/** The `d` value that, with pubkey and kind, names a replaceable event ('' for
 * plain replaceable kinds), or null for kinds that are not replaced. */
function dTagOf(ev: NostrEvent): string | null {
  const cls = eventClass(ev.kind);
  if (cls === "replaceable") return "";
  if (cls !== "addressable") return null;
  return ev.tags.find((t) => t[0] === "d")?.[1] ?? "";
}

export function createEventStore(db: DatabaseSync, opts: EventStoreOptions = {}): EventStore {
  const defaultLimit = opts.defaultLimit ?? 500;
  const sql = {
    exists: db.prepare("SELECT 1 FROM events WHERE id = ?"),
    insert: db.prepare(
      `INSERT INTO events (id, pubkey, kind, created_at, content, tags, sig, d_tag, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertTag: db.prepare("INSERT INTO event_tags (event_id, name, value) VALUES (?, ?, ?)"),
    sameAddress: db.prepare(
      "SELECT id, created_at FROM events WHERE pubkey = ? AND kind = ? AND d_tag = ?",
    ),
    deleteId: db.prepare("DELETE FROM events WHERE id = ?"),
    deleteOwn: db.prepare("DELETE FROM events WHERE id = ? AND pubkey = ? AND kind != 5"),
    deleteAddress: db.prepare(
      "DELETE FROM events WHERE pubkey = ? AND kind = ? AND d_tag = ? AND created_at <= ?",
    ),
    tombstone: db.prepare(
      `INSERT INTO deletions (target, pubkey, created_at) VALUES (?, ?, ?)
       ON CONFLICT (target, pubkey) DO UPDATE SET created_at = max(created_at, excluded.created_at)`,
    ),
    tombstoneOf: db.prepare(
      "SELECT created_at FROM deletions WHERE target = ? AND pubkey = ?",
    ),
    deleteExpired: db.prepare(
      "DELETE FROM events WHERE expires_at IS NOT NULL AND expires_at <= ?",
    ),
  };

  const isDeleted = (ev: NostrEvent, d: string | null): boolean => {
    if (ev.kind === DELETION_KIND) return false; // deleting a deletion request has no effect
    if (sql.tombstoneOf.get(ev.id, ev.pubkey) !== undefined) return true;
    if (d === null) return false;
    // An `a` deletion removes versions up to its created_at; later ones are new.
    const row = sql.tombstoneOf.get(`${ev.kind}:${ev.pubkey}:${d}`, ev.pubkey);
    return row !== undefined && Number(row.created_at) >= ev.created_at;
  };

  const applyDeletion = (req: NostrEvent): void => {
    for (const tag of req.tags) {
      if (tag[0] === "e" && HEX64.test(tag[1] ?? "")) {
        sql.tombstone.run(tag[1], req.pubkey, req.created_at);
        sql.deleteOwn.run(tag[1], req.pubkey);
      } else if (tag[0] === "a") {
        const address = parseAddress(tag[1] ?? "");
        // Only the author may delete: an address naming another key is ignored.
        if (address === undefined || address.pubkey !== req.pubkey) continue;
        const d = eventClass(address.kind) === "addressable" ? address.d : "";
        sql.tombstone.run(`${address.kind}:${req.pubkey}:${d}`, req.pubkey, req.created_at);
        sql.deleteAddress.run(req.pubkey, address.kind, d, req.created_at);
      }
    }
  };

  const save = (ev: NostrEvent, now: number): SaveResult => {
    const expiresAt = expirationOf(ev);
    if (Number.isNaN(expiresAt)) {
      return refused("invalid: expiration tag must be a UNIX timestamp in seconds");
    }
    if (expiresAt !== undefined && expiresAt <= now) return refused("invalid: event has expired");
    if (eventClass(ev.kind) === "ephemeral") return { ok: true, message: "", stored: false };

    const d = dTagOf(ev);
    return transaction(db, (): SaveResult => {
      if (sql.exists.get(ev.id) !== undefined) {
        return { ok: true, message: "duplicate: already have this event", stored: false };
      }
      if (isDeleted(ev, d)) return refused("blocked: deleted by its author");
      const replaced: string[] = [];
      if (d !== null) {
        const existing = sql.sameAddress.all(ev.pubkey, ev.kind, d);
        if (existing.some((row) => wins(row, ev))) {
          return {
            ok: true,
            message: "duplicate: have a newer version of this event",
            stored: false,
          };
        }
        for (const row of existing) {
          sql.deleteId.run(row.id);
          replaced.push(String(row.id));
        }
      }
      sql.insert.run(
        ev.id,
        ev.pubkey,
        ev.kind,
        ev.created_at,
        ev.content,
        JSON.stringify(ev.tags),
        ev.sig,
        d,
        expiresAt ?? null,
      );
      for (const tag of ev.tags) {
        if (tag.length > 1 && /^[a-zA-Z]$/.test(tag[0])) sql.insertTag.run(ev.id, tag[0], tag[1]);
      }
      if (ev.kind === DELETION_KIND) applyDeletion(ev);
      return replaced.length > 0
        ? { ok: true, message: "", stored: true, replaced }
        : { ok: true, message: "", stored: true };
    });
  };

  // Filters come in a bounded number of shapes; reuse their statements.
  const statements = new Map<string, StatementSync>();
  const prepared = (text: string): StatementSync => {
    let stmt = statements.get(text);
    if (stmt === undefined) {
      if (statements.size >= 256) statements.clear();
      stmt = db.prepare(text);
      statements.set(text, stmt);
    }
    return stmt;
  };

  const query = (filters: Filter[], now: number): NostrEvent[] => {
    const found = new Map<string, NostrEvent>();
    for (const f of filters) {
      const built = buildQuery(f, now, defaultLimit);
      if (built === undefined) continue;
      for (const row of prepared(built.sql).all(...built.params)) {
        if (!found.has(String(row.id))) found.set(String(row.id), rowToEvent(row));
      }
    }
    return [...found.values()].sort(newestFirst);
  };

  return {
    save,
    query,
    deleteExpired: (now) => Number(sql.deleteExpired.run(now).changes),
    close: () => {
      if (db.isOpen) db.close();
    },
  };
}

function refused(message: string): SaveResult {
  return { ok: false, message, stored: false };
}

/** NIP-01: of two versions the newer created_at wins, on a tie the lower id. */
function wins(row: SqlRow, ev: NostrEvent): boolean {
  const createdAt = Number(row.created_at);
  return createdAt > ev.created_at || (createdAt === ev.created_at && String(row.id) < ev.id);
}

function newestFirst(a: NostrEvent, b: NostrEvent): number {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function parseAddress(value: string): { kind: number; pubkey: string; d: string } | undefined {
  const m = /^(\d{1,5}):([0-9a-f]{64}):(.*)$/s.exec(value);
  if (m === null) return undefined;
  const kind = Number(m[1]);
  const cls = eventClass(kind);
  if (cls !== "replaceable" && cls !== "addressable") return undefined;
  return { kind, pubkey: m[2], d: m[3] };
}

/** One filter as SQL; undefined when it can match nothing (limit 0, empty list).
 * Lists travel as one JSON parameter so their length never hits SQLite's
 * variable limit. */
function buildQuery(
  f: Filter,
  now: number,
  defaultLimit: number,
): { sql: string; params: SqlValue[] } | undefined {
  const limit = f.limit ?? defaultLimit;
  if (limit <= 0) return undefined;
  const where = ["(expires_at IS NULL OR expires_at > ?)"];
  const params: SqlValue[] = [now];
  const lists: [string, unknown[] | undefined][] = [
    ["id", f.ids],
    ["pubkey", f.authors],
    ["kind", f.kinds],
  ];
  for (const [column, values] of lists) {
    if (values === undefined) continue;
    if (values.length === 0) return undefined;
    where.push(`${column} IN (SELECT value FROM json_each(?))`);
    params.push(JSON.stringify(values));
  }
  if (f.since !== undefined) {
    where.push("created_at >= ?");
    params.push(f.since);
  }
  if (f.until !== undefined) {
    where.push("created_at <= ?");
    params.push(f.until);
  }
  for (const [name, values] of tagFilters(f)) {
    if (values.length === 0) return undefined;
    where.push(
      "id IN (SELECT event_id FROM event_tags WHERE name = ? AND value IN " +
        "(SELECT value FROM json_each(?)))",
    );
    params.push(name, JSON.stringify(values));
  }
  params.push(limit);
  return {
    sql: `SELECT id, pubkey, created_at, kind, tags, content, sig FROM events
          WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id ASC LIMIT ?`,
    params,
  };
}

function rowToEvent(row: SqlRow): NostrEvent {
  return {
    id: String(row.id),
    pubkey: String(row.pubkey),
    created_at: Number(row.created_at),
    kind: Number(row.kind),
    tags: JSON.parse(String(row.tags)),
    content: String(row.content),
    sig: String(row.sig),
  };
}
