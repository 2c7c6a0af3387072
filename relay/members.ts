// Relay membership (docs/protocol.md#membership): who may write, read the
// mesh kinds and get tickets. Reads go to the database every time, so a change made by the
// `members` task on the same file is seen at once; onChange listeners fire
// only for changes made through this store.

import type { DatabaseSync } from "./db.ts";

export type Role = "owner" | "admin" | "member";

export interface Member {
  pubkey: string;
  role: Role;
  addedAt: number;
}

export interface MemberStore {
  role(pubkey: string): Role | undefined;
  isMember(pubkey: string): boolean;
  /**
   * Adds pubkey, or changes its role. An owner is never demoted by add():
   * the owner role comes from `--owner`, and removing it takes remove().
   * Returns whether anything changed.
   */
  add(pubkey: string, role: Role, now: number): boolean;
  /** Returns whether pubkey was a member. */
  remove(pubkey: string): boolean;
  /** Oldest first. */
  list(): Member[];
  /** fn runs after every change made through this store; returns an unsubscribe. */
  onChange(fn: () => void): () => void;
}

const ROLES: readonly Role[] = ["owner", "admin", "member"];
const HEX64 = /^[0-9a-f]{64}$/;

function isRole(value: unknown): value is Role {
  return ROLES.includes(value as Role);
}

export function createMemberStore(db: DatabaseSync): MemberStore {
  const sql = {
    get: db.prepare("SELECT role FROM members WHERE pubkey = ?"),
    insert: db.prepare("INSERT INTO members (pubkey, role, added_at) VALUES (?, ?, ?)"),
    setRole: db.prepare("UPDATE members SET role = ? WHERE pubkey = ?"),
    remove: db.prepare("DELETE FROM members WHERE pubkey = ?"),
    list: db.prepare("SELECT pubkey, role, added_at FROM members ORDER BY added_at, pubkey"),
  };
  const listeners = new Set<() => void>();

  const changed = (): true => {
    // Every listener runs even if one throws; the first error is rethrown.
    let failure: unknown;
    for (const fn of [...listeners]) {
      try {
        fn();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return true;
  };

  const role = (pubkey: string): Role | undefined => {
    const row = sql.get.get(pubkey);
    return row === undefined ? undefined : row.role as Role;
  };

  return {
    role,
    isMember: (pubkey) => role(pubkey) !== undefined,
    add(pubkey, newRole, now) {
      checkPubkey(pubkey);
      if (!isRole(newRole)) {
        throw new Error(`role must be one of ${ROLES.join(", ")}, not ${JSON.stringify(newRole)}`);
      }
      const current = role(pubkey);
      if (current === newRole || current === "owner") return false;
      if (current === undefined) sql.insert.run(pubkey, newRole, Math.floor(now));
      else sql.setRole.run(newRole, pubkey);
      return changed();
    },
    remove(pubkey) {
      if (Number(sql.remove.run(pubkey).changes) === 0) return false;
      return changed();
    },
    list: () =>
      sql.list.all().map((row) => ({
        pubkey: String(row.pubkey),
        role: row.role as Role,
        addedAt: Number(row.added_at),
      })),
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

function checkPubkey(pubkey: string): void {
  if (typeof pubkey !== "string" || !HEX64.test(pubkey)) {
    throw new Error(
      `member pubkey must be 64 lowercase hex characters, got ${JSON.stringify(pubkey)}`,
    );
  }
}
