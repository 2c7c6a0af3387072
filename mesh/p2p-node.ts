/**
 * A member's libp2p node (docs/protocol.md#transports). Its key is the member's Nostr key, so the
 * peer id the handshake authenticates names the member. It speaks TCP (and QUIC when asked and
 * available), reaches others through the relay's circuit when a direct dial fails, and never looks
 * for peers on its own: no bootstrap list, no mDNS, no discovery, no public relays or STUN. Every
 * connection starts with a ticket exchange, and every stream is checked against it.
 */
import { createLibp2p, type Libp2p, type Libp2pOptions } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { FaultTolerance, type PrivateKey, type Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import {
  CONNECTION_LIMITS,
  createStrangerGate,
  filterDialAddrs,
  loadQuic,
  type Logger,
  noiseOneWrite,
  type NostrEvent,
  pubkeyFromPeerId,
  silentLogger,
  type StrangerGate,
  stubBroadcastChannel,
} from "../protocol/mod.ts";
import { type AdmittedPeer, createTicketGate } from "./ticket-exchange.ts";
import { deadline, errorText, shortPeer, untilAborted } from "./stream-frames.ts";
import { freePunchPort, holePunching, parseCidrs } from "./hole-punch.ts";

export type { Stream };

/** The parts of mesh/node-identity.ts `Identity` a node needs. */
export interface MeshIdentity {
  peerId: string;
  pubkey: string;
  libp2pKey: PrivateKey;
}

export interface MeshNodeInit {
  identity: MeshIdentity;
  /** The relay's libp2p addresses, each ending in /p2p/RELAY_PEER_ID. */
  rendezvous: string[];
  relayPubkey: string;
  meshId: string;
  /** This node's current ticket; it must exist before the node dials the relay. */
  ticket: () => NostrEvent | undefined;
  /** Hold a circuit reservation on the relay so peers behind no direct path can reach us. */
  serving: boolean;
  listenHost?: string;
  quic?: boolean;
  log?: Logger;
  /** Ticket exchange limit per connection; removals take effect within 5 s (docs/protocol.md). */
  ticketTimeoutMs?: number;
  /** Per dial attempt. */
  dialTimeoutMs?: number;
  /** Expiry and renewal checks. */
  sweepMs?: number;
  /** How often a serving node without a circuit reservation asks the relay again. */
  reserveRetryMs?: number;
  /** UNIX seconds for ticket expiry; tests set a clock that disagrees with the relay's. */
  now?: () => number;
  /**
   * IPv4 CIDRs a test's simulated internet uses, punched as if public (mesh/hole-punch.ts);
   * default GROVE_TEST_PUBLIC_CIDRS.
   */
  testPublicCidrs?: string;
}

export type StreamHandler = (stream: Stream, remote: AdmittedPeer) => void | Promise<void>;

/**
 * Streams of one Grove protocol one connection may carry each way. libp2p's default (32 in, 64
 * out) reset the 33rd concurrent request from one client; a serving node queues up to
 * MAX_WAITING (inference/scheduler-queue.ts, 256) besides its running slots and answers "busy" beyond,
 * so the stream limit sits above both and below yamux's own 1000 streams per connection.
 */
const MAX_PROTOCOL_STREAMS = 512;

export interface MeshNode {
  peerId: string;
  libp2p: Libp2p;
  /** Own listen addresses (no circuit ones), each ending in /p2p/PEER_ID, for serve reports. */
  directAddrs(): string[];
  /** Own circuit addresses through the relay, once the reservation holds. */
  circuitAddrs(): string[];
  /** Direct addresses first, then the relay's circuit; resolves after the ticket exchange. */
  dialProtocol(
    peerId: string,
    addrs: string[],
    protocol: string,
    signal?: AbortSignal,
  ): Promise<Stream>;
  /** Runs `handler` only for streams from verified, unexpired members; refuses the rest. */
  handle(protocol: string, handler: StreamHandler): Promise<void>;
  /**
   * Closes the connections of peers whose member `pubkeys` leaves out. `listedAt`: the list's
   * created_at (kind 13534, the relay's clock); a ticket issued after it is still honoured.
   */
  setMembers(pubkeys: Set<string>, listedAt?: number): void;
  stop(): Promise<void>;
}

/** The longest one ask for a circuit reservation may take (one takes ~100 ms). */
const RESERVE_ATTEMPT_MS = 5_000;

/** Lets the node listen again on the relay's circuit after a lost reservation. */
interface Relisten {
  listen(addrs: Multiaddr[]): Promise<void>;
}
type MeshServices = {
  identify: ReturnType<ReturnType<typeof identify>>;
  relisten: Relisten;
  holePunch: unknown;
};

export async function startMeshNode(init: MeshNodeInit): Promise<MeshNode> {
  const log = init.log ?? silentLogger;
  if (!init.ticket()) throw new Error("a mesh node needs its ticket before it dials the relay");
  if (init.rendezvous.length === 0) throw new Error("the relay advertised no rendezvous address");
  const isRelay = relayCheck(init);
  const strangers = createStrangerGate({
    onRefused: (ip) => log.warn(`refused connections from ${ip}: too many without a ticket yet`),
  });
  const gate = createTicketGate({
    relayPubkey: init.relayPubkey,
    meshId: init.meshId,
    isRelay,
    ticket: init.ticket,
    log,
    timeoutMs: init.ticketTimeoutMs,
    now: init.now,
    // A peer that showed its ticket is a member: members share NATs, so it leaves its IP's count.
    onVerified: (conn) => strangers.release(conn.remoteAddr),
  });
  stubBroadcastChannel();
  const node = await createLibp2p(await meshNodeOptions(init, log, strangers));
  await gate.attach(node);
  const peerId = node.peerId.toString();

  const circuits = circuitListenAddrs(init.rendezvous);
  log.info(`mesh node ${shortPeer(peerId)} listening on ${directAddrs(node).join(", ")}`);
  if (!init.serving) {
    void node.dial(multiaddr(init.rendezvous[0])).catch((err) =>
      log.warn(`could not reach the rendezvous yet: ${errorText(err)}`)
    );
  }

  let relistening = false;
  async function keepReservation() {
    if (!init.serving || relistening || circuitAddrs(node).length > 0) return;
    relistening = true;
    const limit = deadline(RESERVE_ATTEMPT_MS);
    try {
      log.info("no circuit reservation on the relay; asking for one");
      const listening = node.services.relisten.listen(circuits.map((a) => multiaddr(a)));
      listening.catch(() => {}); // past the limit, its end no longer matters
      // An attempt made while the relay was away can hang; the next sweep asks afresh.
      await untilAborted(listening, limit.signal);
    } catch (err) {
      log.warn(`circuit reservation failed: ${errorText(err)}`);
      // A hung ask is asked again at the next sweeps; a refused one after reserveRetryMs.
      if (limit.signal.aborted) retrySoon();
    } finally {
      limit.clear();
      relistening = false;
    }
  }
  const sweepMs = init.sweepMs ?? 1000;
  const reserveRetryMs = init.reserveRetryMs ?? 5000;
  let lastReserveCheck = Date.now();
  let lastSweep = Date.now();
  let eagerUntil = 0;
  /** For a while, look at every sweep (after a wake, or an ask that hung). */
  function retrySoon() {
    eagerUntil = Date.now() + reserveRetryMs;
  }
  const timer = setInterval(() => {
    gate.sweep();
    // A sweep seconds late means this process was frozen (a laptop asleep, SIGSTOP): its
    // reservation may be gone, and peers behind NAT cannot reach it until it asks again, so for
    // a while it looks at every sweep. Otherwise every few seconds: a reservation takes ~100 ms,
    // and asking each second would pile up attempts on a relay that is away.
    if (Date.now() - lastSweep > 3 * sweepMs) retrySoon();
    lastSweep = Date.now();
    if (Date.now() < eagerUntil || Date.now() - lastReserveCheck >= reserveRetryMs) {
      lastReserveCheck = Date.now();
      void keepReservation();
    }
  }, sweepMs);

  const dialTimeoutMs = init.dialTimeoutMs ?? 5000;
  const warnedAddrs = new Set<string>();
  async function connect(target: string, addrs: string[], signal?: AbortSignal) {
    const open = node.getConnections(peerIdFromString(target)).filter((c) => c.status === "open");
    const existing = open.find((c) => c.direct) ?? open[0];
    if (existing) return existing;
    const failures: string[] = [];
    const order = dialPlan(target, addrs, init.rendezvous);
    if (order.dropped.length > 0 && !warnedAddrs.has(target)) {
      if (warnedAddrs.size > 1000) warnedAddrs.clear();
      warnedAddrs.add(target);
      const why = order.dropped.map((d) => `${d.addr} ${d.reason}`).join("; ");
      log.warn(`not dialing addresses reported for peer ${shortPeer(target)}: ${why}`);
    }
    for (const addr of order.addrs) {
      signal?.throwIfAborted();
      const limit = deadline(dialTimeoutMs, signal);
      try {
        return await node.dial(multiaddr(addr), { signal: limit.signal });
      } catch (err) {
        failures.push(`${addr}: ${errorText(err)}`);
      } finally {
        limit.clear();
      }
    }
    throw new Error(`could not reach peer ${shortPeer(target)} (${failures.join("; ")})`);
  }

  let stopped = false;
  return {
    peerId,
    libp2p: node,
    directAddrs: () => directAddrs(node),
    circuitAddrs: () => circuitAddrs(node),
    async dialProtocol(target, addrs, protocol, signal) {
      const conn = await connect(target, addrs, signal);
      await raceAbort(gate.ready(conn), signal);
      return await conn.newStream(protocol, {
        runOnLimitedConnection: true,
        signal,
        // The request rides with the protocol name: one round trip less before the first token.
        negotiateFully: false,
        maxOutboundStreams: MAX_PROTOCOL_STREAMS,
      });
    },
    async handle(protocol, handler) {
      await node.handle(protocol, async (stream, conn) => {
        const remote = await gate.admit(conn);
        if (typeof remote === "string") {
          const who = shortPeer(conn.remotePeer.toString());
          log.warn(`refused a ${protocol} stream from peer ${who}: ${remote}`);
          stream.abort(new Error(`refused: ${remote}`));
          return;
        }
        await handler(stream, remote);
      }, {
        runOnLimitedConnection: true,
        maxInboundStreams: MAX_PROTOCOL_STREAMS,
        maxOutboundStreams: MAX_PROTOCOL_STREAMS,
      });
    },
    setMembers: (pubkeys, listedAt) => gate.setMembers(pubkeys, listedAt),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await node.stop();
      log.info(`mesh node ${shortPeer(peerId)} stopped`);
    },
  };
}

/** The libp2p options a mesh node runs with; exported so a test can check nothing reaches out. */
export async function meshNodeOptions(
  init: MeshNodeInit,
  log: Logger = silentLogger,
  strangers: StrangerGate = createStrangerGate(),
): Promise<Libp2pOptions<MeshServices>> {
  const host = init.listenHost ?? "127.0.0.1";
  const listen = [`/ip4/${host}/tcp/0`];
  const transports: NonNullable<Libp2pOptions["transports"]> = [tcp(), circuitRelayTransport()];
  if (init.quic) {
    const quic = await loadQuic(log);
    if (quic) {
      transports.push(quic);
      listen.push(`/ip4/${host}/udp/0/quic-v1`);
    }
  }
  if (init.serving) listen.push(...circuitListenAddrs(init.rendezvous));
  return {
    privateKey: init.identity.libp2pKey,
    addresses: { listen },
    // A refused or lost reservation must not stop the node; the sweep asks again.
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    transports,
    connectionEncrypters: [noiseOneWrite()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    // Strangers' idle sockets must not crowd members out (protocol/libp2p-limits.ts); the cap
    // per IP holds until the ticket exchange shows a member.
    connectionManager: { ...CONNECTION_LIMITS },
    connectionGater: { denyInboundConnection: (maConn) => strangers.deny(maConn) },
    services: {
      identify: identify(),
      relisten: (components: { transportManager: Relisten }) => ({
        listen: (addrs: Multiaddr[]) => components.transportManager.listen(addrs),
      }),
      // DCUtR over the relay's circuit: members behind NAT then talk directly.
      holePunch: holePunching({
        punchPort: await freePunchPort(),
        isRelay: relayCheck(init),
        onObserved: (ip) => log.info(`the relay sees this node at ${ip}`),
        testPublic: parseCidrs(init.testPublicCidrs ?? Deno.env.get("GROVE_TEST_PUBLIC_CIDRS")),
      }),
    },
  };
}

/**
 * Reported direct addresses first, then circuits through each relay address. Only what
 * protocol/mesh-addrs.ts lets a node dial: the reporter's own peer id, no link-local or metadata
 * address, Grove's transports; a reported circuit only through one of the relay's own addresses.
 */
export function dialOrder(peerId: string, addrs: string[], rendezvous: string[]): string[] {
  return dialPlan(peerId, addrs, rendezvous).addrs;
}

function dialPlan(peerId: string, addrs: string[], rendezvous: string[]) {
  const relayPeers = new Set(rendezvous.map(relayPeerOf));
  const { addrs: usable, dropped } = filterDialAddrs(addrs, peerId, relayPeers);
  const circuits = rendezvous.map((rv) => `${rv}/p2p-circuit/p2p/${peerId}`);
  const known = new Set(circuits);
  const direct = usable.filter((a) => !a.includes("/p2p-circuit"));
  for (const a of usable) {
    if (a.includes("/p2p-circuit") && !known.has(a)) {
      dropped.push({ addr: a, reason: "is a circuit through none of the relay's addresses" });
    }
  }
  return { addrs: [...new Set([...direct, ...circuits])], dropped };
}

function relayCheck(init: MeshNodeInit): (peerId: string) => boolean {
  const relayPeers = new Set(init.rendezvous.map(relayPeerOf));
  return (p) => relayPeers.has(p) || pubkeyFromPeerId(p) === init.relayPubkey;
}

/** One circuit listen address per relay peer: a second one on the same relay adds nothing. */
function circuitListenAddrs(rendezvous: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const rv of rendezvous) {
    const relay = relayPeerOf(rv);
    if (seen.has(relay)) continue;
    seen.add(relay);
    out.push(`${rv}/p2p-circuit`);
  }
  return out;
}

function relayPeerOf(addr: string): string {
  const m = addr.match(/\/p2p\/([^/]+)$/);
  if (!m) throw new Error(`rendezvous address ${addr} does not end in /p2p/PEER_ID`);
  return m[1];
}

function directAddrs(node: Libp2p): string[] {
  const id = node.peerId.toString();
  return node.getMultiaddrs().map(String).filter((a) => !a.includes("/p2p-circuit"))
    .map((a) => a.includes("/p2p/") ? a : `${a}/p2p/${id}`);
}

function circuitAddrs(node: Libp2p): string[] {
  return node.getMultiaddrs().map(String).filter((a) => a.includes("/p2p-circuit"));
}

async function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return await p;
  p.catch(() => {}); // if the abort wins, a later rejection must not go unhandled
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
