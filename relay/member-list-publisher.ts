/**
 * The relay's NIP-43 member list (docs/protocol.md#kind-13534-member-list-nip-43), republished on
 * every change of the member table: one made through this process (NIP-86, `--owner`) at once, by
 * the member store's onChange; one made by another process on the same file (the `members` task)
 * within a poll, found by re-reading the table and comparing it with the last list published.
 * On a change the tickets of those who are no longer members are revoked first
 * (docs/protocol.md#revocation), then the list goes out.
 */
import { getPublicKey } from "nostr-tools/pure";
import { KIND, type Logger, type NostrEvent, type Startable } from "../protocol/mod.ts";
import type { EventStore } from "./event-store.ts";
import { guardedInterval } from "./guarded-interval.ts";
import type { MemberStore } from "./members.ts";
import { makeMembershipList } from "./nip43.ts";
import type { TicketRegistry } from "./ticket-registry.ts";

export interface MemberListComponents {
  members: Pick<MemberStore, "list" | "onChange">;
  registry: Pick<TicketRegistry, "revokeNonMembers">;
  /** Where the last list this relay published is found, so a restart publishes a newer one. */
  store: Pick<EventStore, "query">;
  /** Stores and broadcasts the signed 13534 event. */
  publish(ev: NostrEvent): void;
  /** UNIX seconds (fractions allowed). */
  now: () => number;
}

export interface MemberListInit {
  /** Signs the lists. */
  relaySecret: Uint8Array;
  /** Between two re-reads of the member table (default 2 s). */
  pollMs?: number;
  log: Logger;
}

export interface MemberListPublisher extends Startable {
  /** Re-reads the member table (the poll calls it; tests call it directly); true on a change. */
  check(): boolean;
  /** Publishes the current list, then follows the table. */
  start(): void;
  stop(): void;
}

export function createMemberListPublisher(
  init: MemberListInit,
  c: MemberListComponents,
): MemberListPublisher {
  const pollMs = init.pollMs ?? 2_000;
  const relayPubkey = getPublicKey(init.relaySecret);
  let published = "";
  let listAt = 0;
  let stopFollowing: (() => void) | undefined;

  function check(): boolean {
    const list = c.members.list();
    const fingerprint = JSON.stringify(list.map((m) => [m.pubkey, m.role]));
    if (fingerprint === published) return false;
    published = fingerprint;
    for (const t of c.registry.revokeNonMembers()) {
      init.log.info(`revoked the ticket of ${short(t.member)} (peer ${short(t.peerId)})`);
    }
    // A replaceable event with the same created_at loses to the lower id: each list must be
    // strictly newer than the last, across restarts too.
    listAt = Math.max(Math.floor(c.now()), listAt + 1);
    c.publish(makeMembershipList(init.relaySecret, list, listAt));
    return true;
  }

  return {
    name: "member list publisher",
    check,
    start() {
      const filter = { kinds: [KIND.MEMBERSHIP_LIST], authors: [relayPubkey], limit: 1 };
      listAt = c.store.query([filter], 0)[0]?.created_at ?? 0;
      check();
      const unsubscribe = c.members.onChange(check);
      const stopPoll = guardedInterval(pollMs, "re-reading members", check, init.log);
      stopFollowing = () => {
        unsubscribe();
        stopPoll();
      };
    },
    stop() {
      stopFollowing?.();
      stopFollowing = undefined;
    },
  };
}

function short(hex: string): string {
  return `${hex.slice(0, 8)}…`;
}
