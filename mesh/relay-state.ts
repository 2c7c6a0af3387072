/**
 * What a node's relay client keeps between connections (relay-client.ts): the newest relay-signed
 * mesh status (30621) and member list (13534, with its created_at, the relay's clock, which
 * tickets also carry), whether the relay refused this node's subscription, and the listeners told
 * of each. The connection loop (relay-connection.ts) feeds it whatever each connection receives;
 * an older copy (the stored one after a reconnect, say) never replaces a newer one.
 *
 * A large mesh's status comes as an index and page events (docs/protocol.md#kind-30621-mesh-status):
 * the newest copy of each is kept, and a status is told only once every page its index names is
 * held at the id it names, so listeners never see a half-updated list.
 */
import {
  assembleMeshStatus,
  KIND,
  type Logger,
  type MeshStatus,
  type MeshStatusPage,
  meshStatusPageOf,
  type NostrEvent,
  parseMeshStatus,
  parseMeshStatusPage,
  silentLogger,
} from "../protocol/mod.ts";
import { listeners } from "./listeners.ts";

export interface RelayStateInit {
  /** Only events this key signed are believed. */
  relayPubkey: string;
  log?: Logger;
}

export interface RelayState {
  /** An event of the subscription: a newer mesh status or member list is kept and told. */
  receive(ev: NostrEvent): void;
  /** The relay closed the subscription with `restricted:` or `auth-required:`. */
  refused(reason: string): void;
  /** The relay sent the subscription's EOSE: it accepts this node (again). */
  accepted(): void;
  /** Called with each newer mesh status, and at once with the latest one when there is one. */
  onMeshStatus(fn: (s: MeshStatus) => void): () => void;
  /** Called with each membership list (a copy), and at once with the latest. */
  onMembers(fn: (pubkeys: Set<string>) => void): () => void;
  /** Called with each refusal, and at once with the standing one. */
  onDenied(fn: (reason: string) => void): () => void;
  meshStatus(): MeshStatus | undefined;
  /** A copy of the latest membership list. */
  members(): Set<string> | undefined;
  /** The latest membership list's created_at (-1 before the first). */
  membersListedAt(): number;
  /** The relay's refusal of the latest subscription, if any. */
  denied(): string | undefined;
}

export function createRelayState(init: RelayStateInit): RelayState {
  const log = init.log ?? silentLogger;
  const statusFns = listeners<MeshStatus>("relay", log);
  const memberFns = listeners<Set<string>>("relay", log);
  const deniedFns = listeners<string>("relay", log);
  let status: MeshStatus | undefined;
  /** The newest index, told once every page it names is here. */
  let index: MeshStatus | undefined, indexAt = -1, told = false;
  const pages = new Map<number, { id: string; at: number; page: MeshStatusPage }>();
  let members: Set<string> | undefined, membersAt = -1;
  let denial: string | undefined;

  function receive(ev: NostrEvent): void {
    if (ev.kind === KIND.MESH_STATUS) {
      const n = meshStatusPageOf(ev);
      if (n === undefined || n === 0) {
        const s = parseMeshStatus(ev, { relayPubkey: init.relayPubkey });
        if (ev.created_at < indexAt) return;
        index = s;
        indexAt = ev.created_at;
        told = false;
      } else {
        const held = pages.get(n);
        if (held !== undefined && ev.created_at < held.at) return;
        const page = parseMeshStatusPage(ev, { relayPubkey: init.relayPubkey });
        pages.set(n, { id: ev.id, at: ev.created_at, page });
      }
      if (index === undefined || told) return;
      const whole = assembleMeshStatus(index, pages);
      if (whole === undefined) return;
      told = true;
      status = whole;
      statusFns.emit(whole);
    } else if (ev.kind === KIND.MEMBERSHIP_LIST) {
      if (ev.pubkey !== init.relayPubkey) throw new Error("membership list not from the relay");
      if (ev.created_at < membersAt) return;
      membersAt = ev.created_at;
      members = new Set(
        ev.tags.filter((t) => t[0] === "member" && /^[0-9a-f]{64}$/.test(t[1])).map((t) => t[1]),
      );
      memberFns.emit(new Set(members));
    }
  }

  return {
    receive(ev) {
      try {
        receive(ev);
      } catch (err) {
        log.warn(`ignoring a kind ${ev.kind} event from the relay: ${(err as Error).message}`);
      }
    },
    refused(reason) {
      denial = reason;
      log.warn(`the relay refused the mesh subscription: ${reason}`);
      deniedFns.emit(reason);
    },
    accepted() {
      if (denial !== undefined) log.info("the relay accepts this node's subscription again");
      denial = undefined;
    },
    onMeshStatus: (fn) => statusFns.add(fn, status),
    onMembers: (fn) => memberFns.add(fn, members && new Set(members)),
    onDenied: (fn) => deniedFns.add(fn, denial),
    meshStatus: () => status,
    members: () => members && new Set(members),
    membersListedAt: () => membersAt,
    denied: () => denial,
  };
}
