/**
 * Connection limits for Grove's libp2p nodes: the relay's rendezvous and members' mesh nodes.
 *
 * libp2p's defaults let 10 inbound connections sit in their handshake, for 10 s each, counted
 * over every remote address: ten idle sockets from a stranger made every member's dial fail.
 * Here a connection that holds no ticket yet is a stranger's. Strangers get a few handshake
 * slots per IP and a short deadline to finish; once the handshake names a ticket holder (the
 * relay's gater), or its ticket is verified (a mesh node's ticket exchange), the connection no
 * longer counts against its IP: members share NATs. The totals are sized for hundreds of members.
 */
import type { MultiaddrConnection } from "@libp2p/interface";
import { ipv6Words } from "./mesh-addrs.ts";

/** libp2p `connectionManager` options for every Grove node. */
export const CONNECTION_LIMITS = {
  /** Open connections: a member holds one to the relay and one to each peer it uses. */
  maxConnections: 1024,
  /** Inbound connections still in their handshake, every IP together. */
  maxIncomingPendingConnections: 512,
  /** New inbound connections one IP may open per second. */
  inboundConnectionThreshold: 64,
  /** ms an inbound connection has to finish Noise and Yamux: an honest one takes ~40 ms. */
  inboundUpgradeTimeout: 3000,
} as const;

/** Connections one IP (one /64 for IPv6) may hold before any of them shows a ticket. */
export const STRANGERS_PER_IP = 8;

export interface StrangerGate {
  /** For `connectionGater.denyInboundConnection`: true refuses a stranger over its IP's cap. */
  deny(maConn: MultiaddrConnection): boolean;
  /** The connection at `remoteAddr` proved a ticket (or ended): its slot is free again. */
  release(remoteAddr: { toString(): string }): void;
  /** Slots in use by the IP (its /64) of `remoteAddr`. */
  pending(remoteAddr: { toString(): string }): number;
}

/**
 * Counts inbound connections per remote IP from their first byte until they prove a ticket or
 * close. Connections that came through the relay's circuit carry no IP of their own and are not
 * counted: the relay already let only ticket holders through. `onRefused` hears of an IP turned
 * away at most once per `quietMs`, so a flood cannot flood the log too.
 */
export function createStrangerGate(
  init: { perIp?: number; onRefused?: (ip: string) => void; quietMs?: number } = {},
): StrangerGate {
  const perIp = init.perIp ?? STRANGERS_PER_IP;
  const quietMs = init.quietMs ?? 10_000;
  const slots = new Map<string, string>(); // remote address → the IP key it counts against
  const perKey = new Map<string, number>();
  const reported = new Map<string, number>();

  function refused(key: string) {
    const now = Date.now();
    if (!init.onRefused || now - (reported.get(key) ?? -Infinity) < quietMs) return;
    if (reported.size >= 10_000) reported.clear();
    reported.set(key, now);
    init.onRefused(key);
  }

  function release(remoteAddr: { toString(): string }) {
    const addr = remoteAddr.toString();
    const key = slots.get(addr);
    if (key === undefined) return;
    slots.delete(addr);
    const n = (perKey.get(key) ?? 1) - 1;
    if (n > 0) perKey.set(key, n);
    else perKey.delete(key);
  }

  return {
    deny(maConn) {
      const addr = maConn.remoteAddr.toString();
      const key = ipKey(addr);
      if (key === undefined || slots.has(addr)) return false;
      const n = perKey.get(key) ?? 0;
      if (n >= perIp) {
        refused(key);
        return true;
      }
      perKey.set(key, n + 1);
      slots.set(addr, key);
      maConn.addEventListener("close", () => release(addr), { once: true });
      return false;
    },
    release,
    pending: (remoteAddr) => perKey.get(ipKey(remoteAddr.toString()) ?? "") ?? 0,
  };
}

/** The IP a direct connection counts against (an IPv6 /64 as one); undefined for circuits. */
export function ipKey(remoteAddr: string): string | undefined {
  if (remoteAddr.includes("/p2p-circuit")) return undefined;
  const m = /^\/(ip4|ip6)\/([^/]+)/.exec(remoteAddr);
  if (!m) return undefined;
  if (m[1] === "ip4") return m[2];
  const w = ipv6Words(m[2]);
  if (!w) return m[2];
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: each is its own IP.
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) {
    return [w[6] >> 8, w[6] & 0xff, w[7] >> 8, w[7] & 0xff].join(".");
  }
  return `${w.slice(0, 4).map((x) => x.toString(16)).join(":")}::/64`;
}
