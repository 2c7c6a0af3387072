// startRelay: the relay's parts wired together. The database (events, members, relay key), the
// NIP-01 connections with their read and write policies, NIP-11, NIP-86, mesh admission, the
// mesh status, the NIP-43 membership list and the libp2p rendezvous; stop() undoes all of it.
import { createHash } from "node:crypto";
import { getPublicKey } from "nostr-tools/pure";
import { libp2pKeyFromNostrSecret, type NostrEvent, silentLogger } from "../protocol/mod.ts";
import { type RelayInit, resolveLimits, systemNow } from "./config.ts";
import { openRelayDatabase } from "./db.ts";
import { createEdgePart } from "./edge-part.ts";
import { createEventStore } from "./event-store.ts";
import { createExpiryPurger } from "./expiry-purger.ts";
import { createMemberListPublisher } from "./member-list-publisher.ts";
import { createMemberStore } from "./members.ts";
import { createMeshStatus } from "./mesh-status-publisher.ts";
import { toHexPubkey } from "./nip86.ts";
import { createRelayApp } from "./relay-app.ts";
import { loadOrCreateRelayKey } from "./relay-key.ts";
import { lateUrls } from "./relay-urls.ts";
import { createRendezvousPart } from "./rendezvous.ts";
import { createSubscriptionHub } from "./subscriptions.ts";
import { createTicketRegistry } from "./ticket-registry.ts";

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
  const now = init.now ?? systemNow;
  const limits = resolveLimits(init.limits);
  const db = openRelayDatabase(init.dataDir, log);
  const cleanups: (() => Promise<void> | void)[] = [() => db.close()];
  const stopAll = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn("a relay part failed to stop cleanly", { error: String(err) });
      }
    }
  };
  try {
    return await assemble();
  } catch (err) {
    await stopAll();
    throw err;
  }

  async function assemble(): Promise<RunningRelay> {
    const secret = loadOrCreateRelayKey(db);
    const pubkey = getPublicKey(secret);
    // Derived from the relay key, so the mesh keeps its id across restarts without more state.
    const meshId = createHash("sha256").update(`grove-mesh:${pubkey}`).digest("hex").slice(0, 32);
    const store = createEventStore(db);
    const members = createMemberStore(db);
    if (init.owner !== undefined) {
      const owner = toHexPubkey(init.owner);
      if (members.add(owner, "owner", now())) log.info(`${short(owner)} is now an owner`);
    }
    if (members.list().length === 0 && !init.open) {
      log.warn("this relay has no members: give --owner, or add some with `members add`");
    }
    const hub = createSubscriptionHub();
    const publishOwn = (ev: NostrEvent) => {
      const result = store.save(ev, Math.floor(now()));
      if (result.ok) hub.broadcast(ev);
      else log.error(`the relay refused its own kind ${ev.kind} event: ${result.message}`);
    };

    const registry = createTicketRegistry(members, { open: init.open });
    const mesh = createMeshStatus({
      relaySecret: secret,
      meshId,
      members,
      publish: publishOwn,
      now,
      log,
      open: init.open,
    });
    mesh.start();
    cleanups.push(() => mesh.stop());

    const memberList = createMemberListPublisher({ relaySecret: secret, log }, {
      members,
      registry,
      store,
      publish: publishOwn,
      now,
    });
    memberList.start();
    cleanups.push(() => memberList.stop());
    const purger = createExpiryPurger({ log }, { store, now });
    purger.start();
    cleanups.push(() => purger.stop());

    const rendezvous = init.meshPort < 0 ? undefined : createRendezvousPart({
      host: init.host,
      port: init.meshPort,
      privateKey: libp2pKeyFromNostrSecret(secret),
      allowPeer: (peerId) => registry.isLive(peerId, now()),
      quic: init.quic ?? true,
      log,
    });
    if (rendezvous) {
      await rendezvous.start();
      cleanups.push(() => rendezvous.stop());
    }

    // The URLs name the bound port, known once the edge listens; handlers read them then.
    const urls = lateUrls();
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
    await edge.start();
    cleanups.push(() => edge.stop());
    const { ws, http, local } = urls.get();

    return {
      url: ws,
      httpUrl: http,
      localUrl: local,
      pubkey,
      meshId,
      rendezvous: rendezvous?.addrs() ?? [],
      fetch: server.fetch,
      stop: (() => {
        let stopping: Promise<void> | undefined;
        return () => stopping ??= stopAll();
      })(),
    };
  }
}

function short(hex: string): string {
  return `${hex.slice(0, 8)}…`;
}
