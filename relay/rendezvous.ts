// The relay's libp2p node: the mesh's rendezvous point (docs/protocol.md#rendezvous). It runs a
// circuit relay v2 server that only ticket holders may use, so members behind NAT can still reach
// each other, and it never looks for peers on its own: no bootstrap list, no mDNS, no public relays
// or STUN.
import { createLibp2p, type Libp2p, type Libp2pOptions } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { circuitRelayServer } from "@libp2p/circuit-relay-v2";
import type { ConnectionGater, PeerId, PrivateKey } from "@libp2p/interface";
import {
  CONNECTION_LIMITS,
  createStrangerGate,
  loadQuic,
  type Logger,
  noiseOneWrite,
  silentLogger,
  type Startable,
  type StrangerGate,
  stubBroadcastChannel,
} from "../protocol/mod.ts";
import { countedRelay, createRelayTraffic, type RelayTraffic } from "./relay-traffic.ts";

export interface RendezvousInit {
  host: string;
  port: number;
  /** The relay's own secp256k1 key, so the rendezvous peer id names the relay. */
  privateKey: PrivateKey;
  /** Does this peer hold a live ticket whose member is still a member? */
  allowPeer: (peerId: string) => boolean;
  /** Also listen on QUIC (UDP, same port number) when the native addon loads. */
  quic?: boolean;
  /** How often open connections are re-checked against allowPeer; removals must act in < 5 s. */
  recheckMs?: number;
  /** Upper bound on simultaneous circuit reservations. */
  maxReservations?: number;
  log?: Logger;
}

export interface Rendezvous {
  peerId: string;
  /** Listen addresses, each ending in /p2p/PEER_ID. */
  addrs: string[];
  /** What the relay carries now and has carried since it started (relay-metrics.ts). */
  metrics(): RendezvousMetrics;
  stop(): Promise<void>;
}

export interface RendezvousMetrics extends RelayTraffic {
  /** Circuit reservations held now. */
  reservations: number;
  /** Open libp2p connections (members, and strangers still in their handshake). */
  connections: number;
}

export async function startRendezvous(init: RendezvousInit): Promise<Rendezvous> {
  const log = init.log ?? silentLogger;
  const allowed = guardedAllow(init.allowPeer, log);
  const traffic = createRelayTraffic();
  const options = await rendezvousOptions(init, allowed, log, traffic);
  stubBroadcastChannel();
  const node = await createLibp2p(options);
  const peerId = node.peerId.toString();
  const addrs = node.getMultiaddrs()
    .map((ma) => ma.toString())
    .filter((a) => !a.includes("/p2p-circuit"))
    .map((a) => a.includes("/p2p/") ? a : `${a}/p2p/${peerId}`);
  log.info(`rendezvous node ${short(peerId)} is listening on ${addrs.join(", ")}`);

  const timer = setInterval(() => sweep(node, allowed, log), init.recheckMs ?? 1000);
  let stopped = false;
  return {
    peerId,
    addrs,
    metrics: () => ({
      ...traffic,
      reservations: node.services.relay.reservations.size,
      connections: node.getConnections().length,
    }),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      clearReservations(node);
      await node.stop();
      log.info(`rendezvous node ${short(peerId)} stopped`);
    },
  };
}

/** The rendezvous as one of the relay's parts: started and stopped with the others. */
export interface RendezvousPart extends Startable {
  /** Listen addresses, each ending in /p2p/PEER_ID; none until started. */
  addrs(): string[];
  /** Undefined while it does not run. */
  metrics(): RendezvousMetrics | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createRendezvousPart(init: RendezvousInit): RendezvousPart {
  let running: Rendezvous | undefined;
  return {
    name: "rendezvous",
    addrs: () => running?.addrs ?? [],
    metrics: () => running?.metrics(),
    async start() {
      running = await startRendezvous(init);
    },
    async stop() {
      await running?.stop();
    },
  };
}

/**
 * The libp2p options the rendezvous runs with; exported so tests can check that nothing in them
 * reaches beyond the mesh.
 */
export async function rendezvousOptions(
  init: RendezvousInit,
  allowed: (peer: PeerId) => boolean,
  log: Logger,
  traffic: RelayTraffic = createRelayTraffic(),
): Promise<Libp2pOptions<RendezvousServices>> {
  const listen = [`/ip4/${init.host}/tcp/${init.port}`];
  const transports: NonNullable<Libp2pOptions["transports"]> = [tcp()];
  if (init.quic) {
    const quic = await loadQuic(log);
    if (quic) {
      transports.push(quic);
      listen.push(`/ip4/${init.host}/udp/${init.port}/quic-v1`);
    }
  }
  return {
    privateKey: init.privateKey,
    addresses: { listen },
    transports,
    connectionEncrypters: [noiseOneWrite()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    // Strangers' idle sockets must not crowd members out of the handshake
    // (protocol/libp2p-limits.ts).
    connectionManager: { ...CONNECTION_LIMITS },
    connectionGater: rendezvousGater(allowed, log, strangerGate(log)),
    services: {
      identify: identify(),
      relay: countedRelay(
        circuitRelayServer({
          // A default reservation caps a relayed connection at 2 min and 128 KiB, which would cut
          // a generation mid-stream (docs/protocol.md#rendezvous); tickets are the limit instead.
          reservations: {
            applyDefaultLimit: false,
            maxReservations: init.maxReservations ?? 256,
          },
        }),
        traffic,
      ),
    },
  };
}

type RendezvousServices = {
  identify: ReturnType<ReturnType<typeof identify>>;
  relay: ReturnType<ReturnType<typeof circuitRelayServer>>;
};

/**
 * Every door into the relay asks the ticket registry; a relayed dial needs both ends allowed.
 * Before the handshake names the peer, `strangers` caps the connections per IP; a ticket holder
 * leaves that count as soon as the handshake identifies it.
 */
export function rendezvousGater(
  allowed: (peer: PeerId) => boolean,
  log: Logger = silentLogger,
  strangers: StrangerGate = createStrangerGate(),
): ConnectionGater {
  return {
    denyDialPeer: (peer) => !allowed(peer),
    denyInboundConnection: (maConn) => strangers.deny(maConn),
    denyInboundEncryptedConnection: (peer, maConn) => {
      if (!allowed(peer)) return true;
      strangers.release(maConn.remoteAddr);
      return false;
    },
    denyOutboundEncryptedConnection: (peer) => !allowed(peer),
    denyInboundRelayReservation: (peer) => {
      if (!allowed(peer)) return true;
      log.info(
        `peer ${short(peer.toString())} holds a ticket and may be reached through the relay`,
      );
      return false;
    },
    denyOutboundRelayedConnection: (src, dst) => !allowed(src) || !allowed(dst),
    denyInboundRelayedConnection: (relay, src) => !allowed(relay) || !allowed(src),
  };
}

/** The per-IP cap on handshakes, saying (at most every 10 s per IP) whom it turned away. */
function strangerGate(log: Logger): StrangerGate {
  return createStrangerGate({
    onRefused: (ip) =>
      log.warn(`refused connections from ${ip} at the rendezvous: too many without a ticket yet`),
  });
}

/** allowPeer with failures turned into a refusal, and refusals logged at most every 10 s. */
function guardedAllow(allowPeer: (peerId: string) => boolean, log: Logger) {
  const lastLogged = new Map<string, number>();
  return (peer: PeerId): boolean => {
    const id = peer.toString();
    let ok = false;
    try {
      ok = allowPeer(id) === true;
    } catch (err) {
      log.error(`could not check peer ${short(id)} against the ticket registry; refusing it`, {
        error: String(err),
      });
    }
    const now = Date.now();
    if (!ok && now - (lastLogged.get(id) ?? 0) > 10_000) {
      lastLogged.set(id, now);
      log.warn(`refused peer ${short(id)} at the rendezvous: it holds no live ticket`);
    }
    if (lastLogged.size > 10_000) lastLogged.clear();
    return ok;
  };
}

/** Close connections and drop reservations of peers whose ticket expired or was revoked. */
function sweep(node: Libp2p<RendezvousServices>, allowed: (peer: PeerId) => boolean, log: Logger) {
  for (const conn of node.getConnections()) {
    if (conn.status !== "open" || allowed(conn.remotePeer)) continue;
    log.info(`closed the connection of peer ${short(conn.remotePeer.toString())}: ticket gone`);
    conn.abort(new Error("peer no longer holds a live ticket"));
  }
  const reservations = node.services.relay.reservations;
  for (const [peer, reservation] of reservations.entries()) {
    // A peer that left cannot be reached anyway; freeing its slot keeps maxReservations honest.
    if (allowed(peer) && node.getConnections(peer).length > 0) continue;
    clearSignal(reservation.signal);
    reservations.delete(peer);
  }
}

/** Reservation timers would outlive node.stop() and keep the process alive. */
function clearReservations(node: Libp2p<RendezvousServices>) {
  for (const reservation of node.services.relay.reservations.values()) {
    clearSignal(reservation.signal);
  }
}

function clearSignal(signal: AbortSignal) {
  (signal as AbortSignal & { clear?: () => void }).clear?.();
}

function short(peerId: string): string {
  return peerId.length > 14 ? `${peerId.slice(0, 10)}…${peerId.slice(-4)}` : peerId;
}
