/**
 * NIP-43 membership list: the relay's own record of who belongs, kind 13534, signed by the
 * relay and republished on every change (docs/protocol.md). Protected (`["-"]`) so no one else can
 * re-post it elsewhere as if the relay had.
 */
import { finalizeEvent } from "nostr-tools/pure";
import { KIND, type NostrEvent } from "../protocol/mod.ts";

/**
 * Every member is listed whatever their role: NIP-43 knows only "member", and owners and admins
 * are members too. Sorted by pubkey so the same membership always signs the same tags.
 */
export function makeMembershipList(
  relaySecret: Uint8Array,
  members: readonly { pubkey: string }[],
  now: number,
): NostrEvent {
  const pubkeys = [...new Set(members.map((m) => m.pubkey))].sort();
  return finalizeEvent({
    kind: KIND.MEMBERSHIP_LIST,
    created_at: Math.floor(now),
    tags: [["-"], ...pubkeys.map((p) => ["member", p])],
    content: "",
  }, relaySecret);
}
