/**
 * Hole punching between members behind NAT (docs/protocol.md#transports): libp2p's DCUtR, run over
 * the relay's circuit only, with three parts of it replaced through the components it is given.
 *
 * - Which addresses this node offers: `/ip4/OBSERVED/tcp/PUNCH_PORT`, OBSERVED being the address
 *   the relay saw this node come from (identify with the relay; no STUN) and PUNCH_PORT a port
 *   this node dials from. js-libp2p's TCP dials leave from a fresh ephemeral port, so the address
 *   the relay observed is never one the peer could reach; a NAT that keeps source ports (Linux
 *   MASQUERADE does when it can) maps PUNCH_PORT to the same port outside, and both sides dialing
 *   each other's punch address at once is a TCP simultaneous open through both NATs.
 * - How it dials: from PUNCH_PORT (`localPort`, which @libp2p/tcp passes to net.connect).
 * - Which addresses count as worth punching: DCUtR drops private and documentation ranges and has
 *   no option for it. Tests give the simulated internet such a range through
 *   GROVE_TEST_PUBLIC_CIDRS; addresses in it travel as `/dns4/IP` (DCUtR takes DNS names as
 *   public) and are turned back into `/ip4/IP` before the dial, so no name is ever resolved.
 *   Nothing outside the namespaces a test builds is ever dialed: the addresses come from peers
 *   met through the relay, as any reported address does.
 */
import { dcutr } from "@libp2p/dcutr";
import type {
  ComponentLogger,
  Connection,
  Libp2pEvents,
  MultiaddrConnection,
  PeerId,
  PeerStore,
  Stream,
  StreamHandler,
  StreamHandlerOptions,
  Topology,
  Transport,
  TypedEventTarget,
  Upgrader,
} from "@libp2p/interface";
import type {
  AddressManager,
  ConnectionManager,
  Registrar,
  TransportManager,
} from "@libp2p/interface-internal";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";

export interface HolePunchInit {
  /** The port this node's punch dials leave from. */
  punchPort: number;
  /** Whether a peer is the mesh's relay: only its view of this node's address counts. */
  isRelay: (peerId: string) => boolean;
  /** Told each new address the relay saw this node come from. */
  onObserved?: (ip: string) => void;
  /** Ranges tests declare public (GROVE_TEST_PUBLIC_CIDRS). */
  testPublic: Cidr[];
  /** Per attempt; DCUtR's default is 5 s. */
  timeoutMs?: number;
}

interface HolePunchComponents {
  peerStore: PeerStore;
  connectionManager: ConnectionManager;
  registrar: Registrar;
  addressManager: AddressManager;
  transportManager: TransportManager;
  logger: ComponentLogger;
  events: TypedEventTarget<Libp2pEvents>;
  upgrader: Upgrader;
}

/** A libp2p service factory: DCUtR with Grove's addresses, dialer and public ranges. */
export function holePunching(init: HolePunchInit) {
  const inner = dcutr({ timeout: init.timeoutMs ?? 5000, retries: 3 });
  return (c: HolePunchComponents) => {
    // Listening from construction on: a serving node identifies the relay while libp2p starts.
    let observed: string | undefined;
    c.events.addEventListener("peer:identify", (evt) => {
      if (!init.isRelay(evt.detail.peerId.toString())) return;
      const ip = evt.detail.observedAddr?.getComponents().find((p) => p.name === "ip4")?.value;
      if (ip && ip !== observed) {
        observed = ip;
        init.onObserved?.(ip);
      }
    });
    return inner({
      peerStore: c.peerStore,
      registrar: gentleRegistrar(c.registrar),
      logger: c.logger,
      transportManager: c.transportManager,
      addressManager: {
        getAddresses: () => punchAddrs(observed, init.punchPort, init.testPublic),
      } as unknown as AddressManager,
      connectionManager: {
        openConnection: async (addrs: Multiaddr | Multiaddr[], opts: PunchDial = {}) => {
          const list = punchTargets(Array.isArray(addrs) ? addrs : [addrs], init.testPublic);
          if (list.length === 0) throw new Error("no address worth punching");
          // Straight to the transport: libp2p's dial queue keeps only its own options, so
          // localPort (which @libp2p/tcp hands to net.connect) and DCUtR's initiator: false
          // would be lost there. The upgraded connection still reaches the connection manager.
          const failures: unknown[] = [];
          for (const ma of list) {
            const transport = c.transportManager.dialTransportForMultiaddr(ma);
            if (!transport) {
              failures.push(new Error(`no transport dials ${ma}`));
              continue;
            }
            const dial = dialSignal(opts.signal, init.timeoutMs ?? 5000);
            try {
              return await transport.dial(
                ma,
                {
                  signal: dial.signal,
                  initiator: opts.initiator,
                  localPort: init.punchPort,
                  upgrader: opts.initiator === false ? responderUpgrader(c.upgrader) : c.upgrader,
                } as Parameters<Transport["dial"]>[1],
              );
            } catch (err) {
              failures.push(err);
            } finally {
              dial.detach();
            }
          }
          throw new AggregateError(failures, "every punch dial failed");
        },
      } as unknown as ConnectionManager,
    });
  };
}

/**
 * A signal for one punch dial that stops following DCUtR's once the dial is over. @libp2p/tcp
 * keeps the dial's signal on the socket, and DCUtR's is a 5 s timeout: passed on as it is, it
 * aborted every punched connection 5 s after it opened.
 */
export function dialSignal(outer: AbortSignal | undefined, timeoutMs: number) {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(outer?.reason);
  const timer = setTimeout(
    () => ctl.abort(new Error(`punch dial took over ${timeoutMs} ms`)),
    timeoutMs,
  );
  if (outer?.aborted) ctl.abort(outer.reason);
  else outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ctl.signal,
    detach() {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * The upgrader for the side DCUtR makes the responder of a punched connection. libp2p's upgrader
 * takes `initiator: false` for multistream-select and Noise, but yamux picks client or server from
 * the raw connection's own direction, which a dial sets to outbound: both ends were then yamux
 * clients and the first stream the other side opened killed the connection ("Both endpoints are
 * clients"). Marking the raw connection inbound before the upgrade makes this side the server.
 */
export function responderUpgrader(upgrader: Upgrader): Upgrader {
  return new Proxy(upgrader, {
    get(target, prop, receiver) {
      if (prop === "upgradeOutbound") {
        return (maConn: MultiaddrConnection, opts: Parameters<Upgrader["upgradeOutbound"]>[1]) => {
          (maConn as { direction: "inbound" | "outbound" }).direction = "inbound";
          return target.upgradeOutbound(maConn, opts);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** What this node offers its peer in DCUtR's CONNECT: nothing unless its outside IP is public. */
export function punchAddrs(ip: string | undefined, port: number, testPublic: Cidr[]): Multiaddr[] {
  if (!ip || !isIpv4(ip)) return [];
  if (inCidrs(ip, testPublic)) return [multiaddr(`/dns4/${ip}/tcp/${port}`)];
  if (isPrivateV4(ip)) return [];
  return [multiaddr(`/ip4/${ip}/tcp/${port}`)];
}

/** The peer's punch addresses as dialable ones: test-public names back to IPs, no other names. */
export function punchTargets(addrs: Multiaddr[], testPublic: Cidr[]): Multiaddr[] {
  const out: Multiaddr[] = [];
  for (const ma of addrs) {
    const parts = ma.getComponents();
    const [host, tcp] = parts;
    if (tcp?.name !== "tcp" || !host.value) continue;
    const rest = parts.slice(1).map((p) =>
      `/${p.name}${p.value === undefined ? "" : `/${p.value}`}`
    );
    if (host.name === "dns4" && isIpv4(host.value) && inCidrs(host.value, testPublic)) {
      out.push(multiaddr(`/ip4/${host.value}${rest.join("")}`));
    } else if (host.name === "ip4" && !isPrivateV4(host.value)) {
      out.push(ma);
    } else if (host.name === "ip4" && inCidrs(host.value, testPublic)) {
      out.push(ma);
    }
  }
  return out;
}

/**
 * DCUtR closes the relayed connection as soon as the direct one is up, which would cut a request
 * still streaming through the circuit. New streams take the direct connection (p2p-node.ts), so
 * the circuit is closed once only DCUtR's own stream is left on it.
 */
function gentleRegistrar(registrar: Registrar): Registrar {
  const gentle = (conn: Connection): Connection =>
    new Proxy(conn, {
      get(target, prop, receiver) {
        if (prop !== "close") return Reflect.get(target, prop, receiver);
        return () => {
          const busy = () =>
            target.status === "open" &&
            target.streams.some((s: Stream) =>
              s.protocol !== "/libp2p/dcutr" && s.status === "open"
            );
          const timer = setInterval(() => {
            if (busy()) return;
            clearInterval(timer);
            if (target.status === "open") {
              void target.close().catch(() => target.abort(new Error("closed")));
            }
          }, 500);
          return Promise.resolve();
        };
      },
    });
  return new Proxy(registrar, {
    get(target, prop, receiver) {
      if (prop === "handle") {
        return (protocol: string, handler: StreamHandler, opts?: StreamHandlerOptions) =>
          target.handle(protocol, (stream, conn) => handler(stream, gentle(conn)), opts);
      }
      if (prop === "register") {
        return (protocol: string, topology: Topology) =>
          target.register(protocol, {
            ...topology,
            onConnect: (peer: PeerId, conn: Connection) => topology.onConnect?.(peer, gentle(conn)),
          });
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

interface PunchDial {
  signal?: AbortSignal;
  initiator?: boolean;
}

export interface Cidr {
  base: number;
  mask: number;
}

/**
 * GROVE_TEST_PUBLIC_CIDRS: comma-separated IPv4 CIDRs a test's simulated internet uses, which the
 * hole puncher then treats as public. A malformed entry is an error, not silently ignored.
 */
export function parseCidrs(text: string | undefined): Cidr[] {
  if (!text || text.trim() === "") return [];
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const m = s.match(/^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/);
    const bits = m ? Number(m[2]) : -1;
    if (!m || !isIpv4(m[1]) || bits > 32) {
      throw new Error(`GROVE_TEST_PUBLIC_CIDRS: ${s} is not an IPv4 CIDR like 198.18.0.0/15`);
    }
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return { base: (ipv4Number(m[1]) & mask) >>> 0, mask };
  });
}

export function inCidrs(ip: string, cidrs: Cidr[]): boolean {
  const n = ipv4Number(ip);
  return cidrs.some((c) => ((n & c.mask) >>> 0) === c.base);
}

/** Private, shared, loopback, link-local, benchmark, documentation, reserved: DCUtR's own list. */
const NOT_PUBLIC = parseCidrs(
  "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,192.0.0.0/24," +
    "192.0.2.0/24,192.88.99.0/24,192.168.0.0/16,198.18.0.0/15,198.51.100.0/24,203.0.113.0/24," +
    "224.0.0.0/4,240.0.0.0/4",
);

export function isPrivateV4(ip: string): boolean {
  return inCidrs(ip, NOT_PUBLIC);
}

function isIpv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function ipv4Number(ip: string): number {
  return ip.split(".").reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

/** A TCP port free now on every address, for punch dials to leave from (bound per dial). */
export async function freePunchPort(): Promise<number> {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return await Promise.resolve(port);
}
