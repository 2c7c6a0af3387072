/**
 * Which peers hold a live admission ticket (docs/protocol.md#rendezvous). The rendezvous node asks
 * `isLive` for each connection and circuit reservation. Membership is read at call time, so a
 * removed member's tickets die the moment the member store forgets them, even before `revokeMember`
 * runs.
 */

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
}

export function createTicketRegistry(
  members: MemberCheck,
  opts: TicketRegistryOptions = {},
): TicketRegistry {
  const byPeer = new Map<string, IssuedTicket>();
  const allowed = (member: string) => opts.open === true || members.isMember(member);

  // Expired entries go whenever the map is walked or asked about, so it never outgrows the
  // number of peers that asked within the last ticket lifetime.
  const dropExpired = (now: number) => {
    for (const [peerId, t] of byPeer) if (t.expiresAt <= now) byPeer.delete(peerId);
  };

  return {
    issue(member, peerId, expiresAt) {
      byPeer.set(peerId, { member, peerId, expiresAt });
    },
    isLive(peerId, now) {
      const t = byPeer.get(peerId);
      if (t === undefined) return false;
      if (t.expiresAt <= now) {
        byPeer.delete(peerId);
        return false;
      }
      return allowed(t.member);
    },
    revokeMember(pubkey) {
      const revoked: string[] = [];
      for (const [peerId, t] of byPeer) {
        if (t.member !== pubkey) continue;
        byPeer.delete(peerId);
        revoked.push(peerId);
      }
      return revoked;
    },
    revokeNonMembers() {
      if (opts.open === true) return [];
      const revoked: IssuedTicket[] = [];
      for (const [peerId, t] of byPeer) {
        if (members.isMember(t.member)) continue;
        byPeer.delete(peerId);
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
