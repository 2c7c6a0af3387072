/**
 * Which peers hold a live admission ticket (docs/protocol.md#rendezvous). The rendezvous node asks
 * `isLive` for each connection and circuit reservation. Membership is read at call time, so a
 * removed member's tickets die the moment the member store forgets them, even before `revokeMember`
 * runs. With a store, issued tickets survive a restart of the relay.
 */
import type { DatabaseSync } from "./db.ts";

/** The part of relay/members.ts the registry needs. */
export interface MemberCheck {
  isMember(pubkey: string): boolean;
}

export interface IssuedTicket {
  member: string;
  peerId: string;
  expiresAt: number;
}

export interface TicketRegistry {
  /** Records a ticket; a later one for the same peer replaces the earlier. */
  issue(member: string, peerId: string, expiresAt: number): void;
  /** A ticket for `peerId` that has not expired, held by someone who is still a member. */
  isLive(peerId: string, now: number): boolean;
  /** Forgets a member's tickets; returns the peer ids whose connections should now be closed. */
  revokeMember(pubkey: string): string[];
  /** Forgets the tickets of everyone who is no longer a member (call from MemberStore.onChange). */
  revokeNonMembers(): IssuedTicket[];
  liveCount(now: number): number;
}

export interface TicketRegistryOptions {
  /** `--open`: anyone who authenticated may hold a ticket; membership is not checked. */
  open?: boolean;
  /**
   * Where issued tickets outlive the process: a restarted relay must still admit the peers whose
   * signed tickets are valid, or every node stays refused at the rendezvous until it renews.
   */
  store?: TicketStore;
}

/** Issued tickets on disk (the relay database's `tickets` table). */
export interface TicketStore {
  all(): IssuedTicket[];
  put(t: IssuedTicket): void;
  remove(peerId: string): void;
}

export function createTicketStore(db: DatabaseSync): TicketStore {
  const all = db.prepare("SELECT peer_id, member, expires_at FROM tickets");
  const put = db.prepare(
    "INSERT OR REPLACE INTO tickets (peer_id, member, expires_at) VALUES (?, ?, ?)",
  );
  const remove = db.prepare("DELETE FROM tickets WHERE peer_id = ?");
  return {
    all: () =>
      all.all().map((r) => ({
        peerId: String(r.peer_id),
        member: String(r.member),
        expiresAt: Number(r.expires_at),
      })),
    put: (t) => void put.run(t.peerId, t.member, t.expiresAt),
    remove: (peerId) => void remove.run(peerId),
  };
}

export function createTicketRegistry(
  members: MemberCheck,
  opts: TicketRegistryOptions = {},
): TicketRegistry {
  const byPeer = new Map<string, IssuedTicket>();
  const store = opts.store;
  for (const t of store?.all() ?? []) byPeer.set(t.peerId, t);
  const forget = (peerId: string) => {
    byPeer.delete(peerId);
    store?.remove(peerId);
  };
  const allowed = (member: string) => opts.open === true || members.isMember(member);

  // Expired entries go whenever the map is walked or asked about, so it never outgrows the
  // number of peers that asked within the last ticket lifetime.
  const dropExpired = (now: number) => {
    for (const [peerId, t] of byPeer) if (t.expiresAt <= now) forget(peerId);
  };

  return {
    issue(member, peerId, expiresAt) {
      const t = { member, peerId, expiresAt };
      byPeer.set(peerId, t);
      store?.put(t);
    },
    isLive(peerId, now) {
      const t = byPeer.get(peerId);
      if (t === undefined) return false;
      if (t.expiresAt <= now) {
        forget(peerId);
        return false;
      }
      return allowed(t.member);
    },
    revokeMember(pubkey) {
      const revoked: string[] = [];
      for (const [peerId, t] of byPeer) {
        if (t.member !== pubkey) continue;
        forget(peerId);
        revoked.push(peerId);
      }
      return revoked;
    },
    revokeNonMembers() {
      if (opts.open === true) return [];
      const revoked: IssuedTicket[] = [];
      for (const [peerId, t] of byPeer) {
        if (members.isMember(t.member)) continue;
        forget(peerId);
        revoked.push(t);
      }
      return revoked;
    },
    liveCount(now) {
      dropExpired(now);
      let n = 0;
      for (const t of byPeer.values()) if (allowed(t.member)) n++;
      return n;
    },
  };
}
