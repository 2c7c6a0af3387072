/**
 * The node's /api/members hooks (web/members-api.ts): the relay's member list, read and changed
 * over NIP-86 with the node's own key, the same calls `members --relay URL --nsec` makes.
 */
import { npubEncode } from "nostr-tools/nip19";
import { toHexPubkey } from "../relay/mod.ts";
import {
  addMember,
  listMembers,
  type MemberRecord,
  nip86Client,
  Nip86Error,
  removeMember,
} from "./nip86-client.ts";

/**
 * How long a refusal to list is remembered. The relay charges each refused call to the node's
 * address, from a budget its admission requests share (60 a minute by default): a dashboard
 * asking every few seconds must not spend it.
 */
export const REFUSAL_KEPT_MS = 30_000;

export interface MemberHookOptions {
  relayUrl: string;
  now?: () => number;
}

export function memberHooks(opts: MemberHookOptions, identity: { secretKey: Uint8Array }) {
  const client = nip86Client(opts.relayUrl, identity.secretKey);
  const now = opts.now ?? Date.now;
  let refused: { reason: string; at: number } | undefined;

  const entry = (m: MemberRecord) => ({
    pubkey: m.pubkey,
    npub: npubEncode(m.pubkey),
    role: m.role,
  });
  const hexOf = (target: string) => {
    try {
      return toHexPubkey(target);
    } catch (err) {
      throw Object.assign(new Error((err as Error).message), { code: "invalid_pubkey" });
    }
  };

  return {
    async listMembers() {
      if (refused && now() - refused.at < REFUSAL_KEPT_MS) {
        return { canManage: false, reason: refused.reason, members: [] };
      }
      try {
        const members = (await listMembers(client)).map(entry);
        refused = undefined;
        return { canManage: true, reason: null, members };
      } catch (err) {
        if (!(err instanceof Nip86Error) || err.code !== "relay_refused") throw err;
        refused = { reason: err.relayError ?? err.message, at: now() };
        return { canManage: false, reason: refused.reason, members: [] };
      }
    },
    async addMember(target: string, role?: "member" | "admin") {
      const pubkey = hexOf(target);
      await addMember(client, pubkey, role);
      refused = undefined;
      const listed = (await listMembers(client)).find((m) => m.pubkey === pubkey);
      return entry(listed ?? { pubkey, role: role ?? "member" });
    },
    async removeMember(target: string) {
      const pubkey = hexOf(target);
      await removeMember(client, pubkey);
      return { pubkey, npub: npubEncode(pubkey) };
    },
  };
}
