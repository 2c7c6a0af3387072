// docs/protocol.md#nip-42-and-reading: the mesh's own kinds are for members' eyes only. Kinds 30621
// (mesh status), 13534 (membership list) and 24620 (serve reports) are readable by an authenticated
// member; anyone may read the rest. A REQ that names a restricted kind without that right ends in
// CLOSED; a filter without `kinds` is served with the restricted kinds left out.
import { KIND, type NostrEvent } from "../protocol/mod.ts";
import type { Filter } from "./filter.ts";

const RESTRICTED_KINDS: ReadonlySet<number> = new Set<number>([
  KIND.MESH_STATUS,
  KIND.MEMBERSHIP_LIST,
  KIND.SERVE_REPORT,
]);

/** Who is reading: the connection's authenticated pubkey, if any, and the member test. */
export interface Reader {
  pubkey: string | undefined;
  isMember: (pubkey: string) => boolean;
}

function mayReadRestricted(reader: Reader): boolean {
  return reader.pubkey !== undefined && reader.isMember(reader.pubkey);
}

/** Whether this reader may receive this event. */
export function mayRead(ev: NostrEvent, reader: Reader): boolean {
  return !RESTRICTED_KINDS.has(ev.kind) || mayReadRestricted(reader);
}

/**
 * The CLOSED reason for a REQ this reader may not make, or undefined when it may. Only filters
 * that name a restricted kind are refused; kind-less filters are trimmed by mayRead instead.
 */
export function refuseReq(filters: Filter[], reader: Reader): string | undefined {
  const named = filters.flatMap((f) => f.kinds ?? []).filter((k) => RESTRICTED_KINDS.has(k));
  if (named.length === 0 || mayReadRestricted(reader)) return undefined;
  const kinds = [...new Set(named)].join(", ");
  if (reader.pubkey === undefined) {
    return `auth-required: kind ${kinds} is readable by authenticated members only`;
  }
  return `restricted: kind ${kinds} is readable by members only, and you are not one`;
}
