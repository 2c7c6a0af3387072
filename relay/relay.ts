// startRelay: the relay composed of parts with the one lifecycle of protocol/lifecycle.ts
// (docs/architecture.md#the-lifecycle-of-the-relay). First the components, which run nothing: the
// database with the event store, the member table and the relay's key, the subscriptions, the
// ticket registry, the URLs (set by the edge) and the HTTP app. Then the parts, started in order
// and stopped in reverse: the database (closed last), the mesh status, the NIP-43 member list, the
// expiry purger, the rendezvous and the edge.
import { createHash } from "node:crypto";
import { getPublicKey } from "nostr-tools/pure";
import {
  compose,
  type Composition,
  libp2pKeyFromNostrSecret,
  type Logger,
  type NostrEvent,
  silentLogger,
  type Startable,
} from "../protocol/mod.ts";
import { type RelayInit, type RelayLimits, resolveLimits, systemNow } from "./config.ts";
import { type DatabaseSync, openRelayDatabase } from "./db.ts";
import { createEdgePart } from "./edge-part.ts";
import { createEventStore, type EventStore } from "./event-store.ts";
import { createExpiryPurger } from "./expiry-purger.ts";
import { createMemberListPublisher } from "./member-list-publisher.ts";
import { createMemberStore, type MemberStore } from "./members.ts";
import { createMeshStatus } from "./mesh-status-publisher.ts";
import { toHexPubkey } from "./nip86.ts";
import { createRelayApp } from "./relay-app.ts";
import { loadOrCreateRelayKey } from "./relay-key.ts";
import { lateUrls } from "./relay-urls.ts";
import { createRendezvousPart } from "./rendezvous.ts";
import { createSubscriptionHub, type SubscriptionHub } from "./subscriptions.ts";
import { createTicketRegistry, createTicketStore } from "./ticket-registry.ts";

export interface RunningRelay {
  /** ws:// URL clients use (the public URL when one was given), with a trailing slash. */
  url: string;
  /** The same as http(s), no trailing slash: NIP-86 and NIP-98 `u`. */
  httpUrl: string;
  /** The address actually bound, e.g. ws://127.0.0.1:40123/. */
  localUrl: string;
  /** The relay's hex pubkey. */
  pubkey: string;
  meshId: string;
  /** Rendezvous multiaddrs (empty with meshPort -1). */
  rendezvous: string[];
  /** The HTTP app, for in-process requests. */
  fetch(req: Request): Promise<Response>;
  stop(): Promise<void>;
}

export async function startRelay(init: RelayInit): Promise<RunningRelay> {
  const log = init.log ?? silentLogger;
  const limits = resolveLimits(init.limits);
  const db = openRelayDatabase(init.dataDir, log);
  let relay: ComposedRelay;
  try {
    relay = composeRelay(init, limits, db, log);
  } catch (err) {
    db.close();
    throw err;
  }
  // A part that fails to start stops those started before it, the database included.
  await relay.parts.startAll();
  return relay.running();
}

interface ComposedRelay {
  parts: Composition;
  /** The face, once every part started. */
  running(): RunningRelay;
}

function composeRelay(
  init: RelayInit,
  limits: RelayLimits,
  db: DatabaseSync,
  log: Logger,
): ComposedRelay {
  const now = init.now ?? systemNow;
  const secret = loadOrCreateRelayKey(db);
  const pubkey = getPublicKey(secret);
  const meshId = meshIdOf(pubkey);
  const store = createEventStore(db);
  const members = createMemberStore(db);
  addOwner(init, members, now, log);
  const hub = createSubscriptionHub();
  const publish = ownEvents(store, hub, now, log);
  const registry = createTicketRegistry(members, {
    open: init.open,
    store: createTicketStore(db),
  });
  const urls = lateUrls();

  const database: Startable = { name: "relay database", stop: () => db.close() };
  const mesh = createMeshStatus({
    relaySecret: secret,
    meshId,
    members,
    publish,
    now,
    log,
    open: init.open,
  });
  const memberList = createMemberListPublisher({ relaySecret: secret, log }, {
    members,
    registry,
    store,
    publish,
    now,
  });
  const purger = createExpiryPurger({ log }, { store, now });
  const rendezvous = init.meshPort < 0 ? undefined : createRendezvousPart({
    host: init.host,
    port: init.meshPort,
    privateKey: libp2pKeyFromNostrSecret(secret),
    allowPeer: (peerId) => registry.isLive(peerId, now()),
    quic: init.quic ?? true,
    log,
  });
  const server = createRelayApp({
    name: init.name,
    relaySecret: secret,
    meshId,
    open: init.open,
    limits,
    log,
  }, {
    store,
    subscriptions: hub,
    members,
    registry,
    mesh,
    urls,
    rendezvousAddrs: () => rendezvous?.addrs() ?? [],
    rendezvousMetrics: () => rendezvous?.metrics(),
    now,
  });
  const edge = createEdgePart({
    host: init.host,
    port: init.port,
    publicUrl: init.publicUrl,
    trustProxy: init.trustProxy ?? false,
    limits,
    log,
  }, { server, urls });

  const parts = compose(
    [database, mesh, memberList, purger, ...(rendezvous ? [rendezvous] : []), edge],
    log,
  );
  return {
    parts,
    running() {
      const { ws, http, local } = urls.get();
      return {
        url: ws,
        httpUrl: http,
        localUrl: local,
        pubkey,
        meshId,
        rendezvous: rendezvous?.addrs() ?? [],
        fetch: server.fetch,
        stop: parts.stop,
      };
    },
  };
}

/** Derived from the relay key, so the mesh keeps its id across restarts without more state. */
function meshIdOf(relayPubkey: string): string {
  return createHash("sha256").update(`grove-mesh:${relayPubkey}`).digest("hex").slice(0, 32);
}

/** `--owner` is made an owner at every start (a no-op when it already is). */
function addOwner(init: RelayInit, members: MemberStore, now: () => number, log: Logger): void {
  if (init.owner !== undefined) {
    const owner = toHexPubkey(init.owner);
    if (members.add(owner, "owner", now())) log.info(`${short(owner)} is now an owner`);
  }
  if (members.list().length === 0 && !init.open) {
    log.warn("this relay has no members: give --owner, or add some with `members add`");
  }
}

/** The relay's own events (mesh status, member list): stored, then sent to subscribers. */
function ownEvents(
  store: EventStore,
  hub: SubscriptionHub,
  now: () => number,
  log: Logger,
): (ev: NostrEvent) => void {
  return (ev) => {
    const result = store.save(ev, Math.floor(now()));
    if (result.ok) hub.broadcast(ev);
    else log.error(`the relay refused its own kind ${ev.kind} event: ${result.message}`);
  };
}

function short(hex: string): string {
  return `${hex.slice(0, 8)}…`;
}
