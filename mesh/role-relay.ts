/**
 * The relay part of a mesh role: the relay connection (relay-client.ts), the mesh status it
 * follows (who serves what), and, on a members-only relay, the member list, which the libp2p node
 * uses to cut peers that left and which tells this node whether it was removed.
 */
import {
  type Logger,
  type MeshStatus,
  type NostrEvent,
  silentLogger,
  type Startable,
} from "../protocol/mod.ts";
import { listeners } from "./listeners.ts";
import type { Identity } from "./node-identity.ts";
import { connectRelay, type RelayClient } from "./relay-client.ts";
import type { PeerPart } from "./role-peer.ts";

export interface RelayPartInit {
  url: string;
  identity: Identity;
  relayPubkey: string;
  /** Follow the member list; an `--open` relay admits non-members, so its list gates nothing. */
  membersOnly: boolean;
  log?: Logger;
}

export interface RelayPartComponents {
  /** The member list goes to its node, which cuts the peers that left. */
  peer: Pick<PeerPart, "node">;
  connectRelay?: typeof connectRelay;
}

/** What the role reads of the relay side; only this part writes it. */
export interface RelayView {
  /** The latest verified mesh status; undefined until the relay sent one. */
  status: MeshStatus | undefined;
  /** The member list named this node (serving nodes admit a member once their list names it). */
  listed: boolean;
  /** The member list named this node, then left it out. */
  removed: boolean;
}

export interface RelayPart extends Startable {
  start(): Promise<void>;
  readonly view: Readonly<RelayView>;
  /** The relay's refusal of this node (its subscription refused, or its key removed), if any. */
  refusal(): string | undefined;
  /** The relay's websocket is open now (it reconnects on its own when it drops). */
  connected(): boolean;
  /** Publishes on the relay connection (serve reports). */
  publish(ev: NostrEvent): Promise<void>;
  /** Tells `fn` each new mesh status (a split candidate re-plans on it); returns its removal. */
  onStatus(fn: (status: MeshStatus) => void): () => void;
}

export function createRelayPart(init: RelayPartInit, components: RelayPartComponents): RelayPart {
  const connect = components.connectRelay ?? connectRelay;
  const view: RelayView = { status: undefined, listed: false, removed: false };
  let relay: RelayClient | undefined;
  const statusFns = listeners<MeshStatus>("mesh status", init.log ?? silentLogger);

  function onMembers(client: RelayClient, members: Set<string>): void {
    components.peer.node()?.setMembers(members, client.membersListedAt());
    // The list can lag the member table by a poll (~2 s): only leaving it says "removed".
    if (members.has(init.identity.pubkey)) view.listed = true;
    view.removed = view.listed && !members.has(init.identity.pubkey);
    if (view.removed) init.log?.warn("this node's key was removed from the relay's members");
  }

  return {
    name: "relay connection",
    view,
    async start() {
      const client = await connect({
        url: init.url,
        identity: init.identity,
        relayPubkey: init.relayPubkey,
        log: init.log,
      });
      relay = client;
      if (init.membersOnly) client.onMembers((members) => onMembers(client, members));
      client.onMeshStatus((s) => {
        view.status = s;
        statusFns.emit(s);
      });
    },
    connected: () => relay?.connected() ?? false,
    refusal: () =>
      relay?.denied() ??
        (view.removed ? "this key was removed from the relay's members" : undefined),
    publish(ev) {
      if (!relay) return Promise.reject(new Error("the relay connection is not open"));
      return relay.publish(ev);
    },
    onStatus: (fn) => statusFns.add(fn, view.status),
    stop: () => relay?.close(),
  };
}
