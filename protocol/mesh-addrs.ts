/**
 * Which reported addresses a member's node may dial (docs/protocol.md#dialing: a node dials only
 * addresses the relay advertised or peers reported through it). A serve report's `addrs` are
 * republished under the relay's key and dialed first by every member, so a hostile member could
 * point the whole mesh at a cloud metadata service or at someone else's peer. The relay strips such
 * addresses when it folds reports into kind 30621, and every node filters again before it dials.
 *
 * An address passes when it is
 * - ip4 or ip6 (no DNS names: metadata.google.internal and friends resolve inside clouds),
 *   neither link-local (169.254/16, fe80::/10: cloud metadata lives there), multicast,
 *   unspecified (0.0.0.0, ::), broadcast, nor a known metadata address; private and loopback
 *   ranges pass, since LANs and tests use them;
 * - on a transport Grove speaks: tcp, or udp/quic-v1, with a non-zero port;
 * - for the reporter: its last /p2p/ is the reporter's peer id, or it has none (then the
 *   reporter's is appended);
 * - a circuit only through the mesh's own relay: `.../p2p/RELAY/p2p-circuit[/p2p/REPORTER]`.
 */
import { multiaddr } from "@multiformats/multiaddr";

/** Cloud metadata services outside the link-local ranges (those are refused as a whole). */
const METADATA_V4 = new Set([
  "100.100.100.200", // Alibaba Cloud
  "168.63.129.16", // Azure's WireServer
]);
const METADATA_V6 = new Set(["fd00:ec2:0:0:0:0:0:254"]); // AWS IMDS over IPv6

export type DialCheck = { ok: true; addr: string } | { ok: false; reason: string };

/**
 * `addr` normalised to end in `/p2p/PEER_ID` when the reporter `peerId` may be dialed there;
 * otherwise why not. `relayPeers`: the peer ids of the mesh's relay (circuits go through it only).
 */
export function checkDialAddr(
  addr: string,
  peerId: string,
  relayPeers: ReadonlySet<string>,
): DialCheck {
  let parts: { name: string; value?: string }[];
  try {
    parts = multiaddr(addr).getComponents();
  } catch {
    return { ok: false, reason: "is not a multiaddr" };
  }
  const [ip, ...rest] = parts;
  if (ip?.name !== "ip4" && ip?.name !== "ip6") {
    return { ok: false, reason: "is not an ip4 or ip6 address (DNS names are not dialed)" };
  }
  const bad = ip.name === "ip4" ? ipv4Problem(ip.value ?? "") : ipv6Problem(ip.value ?? "");
  if (bad) return { ok: false, reason: `names ${ip.value}, ${bad}` };
  const transport = transportLength(rest);
  if (transport === 0) {
    return { ok: false, reason: "is on a transport Grove does not speak (tcp or udp/quic-v1)" };
  }
  const tail = rest.slice(transport);
  const names = tail.map((c) => c.name).join("/");
  if (names === "") return { ok: true, addr: `${addr}/p2p/${peerId}` };
  if (names === "p2p") {
    return tail[0].value === peerId
      ? { ok: true, addr }
      : { ok: false, reason: `names another peer (${tail[0].value})` };
  }
  if (names === "p2p/p2p-circuit" || names === "p2p/p2p-circuit/p2p") {
    if (!relayPeers.has(tail[0].value ?? "")) {
      return { ok: false, reason: "is a circuit through a relay other than the mesh's own" };
    }
    if (tail.length === 2) return { ok: true, addr: `${addr}/p2p/${peerId}` };
    return tail[2].value === peerId
      ? { ok: true, addr }
      : { ok: false, reason: `is a circuit to another peer (${tail[2].value})` };
  }
  return { ok: false, reason: `carries /${names}, which Grove does not dial` };
}

/** The dialable addresses among `addrs` (normalised, deduplicated) and why the rest are not. */
export function filterDialAddrs(
  addrs: readonly string[],
  peerId: string,
  relayPeers: ReadonlySet<string>,
): { addrs: string[]; dropped: { addr: string; reason: string }[] } {
  const kept = new Set<string>();
  const dropped: { addr: string; reason: string }[] = [];
  for (const addr of addrs) {
    const check = checkDialAddr(addr, peerId, relayPeers);
    if (check.ok) kept.add(check.addr);
    else dropped.push({ addr, reason: check.reason });
  }
  return { addrs: [...kept], dropped };
}

/** Components taken by tcp/PORT or udp/PORT/quic-v1 at the start of `rest`; 0 if neither. */
function transportLength(rest: { name: string; value?: string }[]): number {
  const port = Number(rest[0]?.value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 0;
  if (rest[0].name === "tcp") return 1;
  if (rest[0].name === "udp" && rest[1]?.name === "quic-v1") return 2;
  return 0;
}

/** Why an IPv4 address is never dialed, or undefined. */
function ipv4Problem(ip: string): string | undefined {
  const o = ip.split(".").map(Number);
  if (o.length !== 4 || o.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
    return "not an IPv4 address";
  }
  if (o[0] === 0) return "an unspecified address";
  if (o[0] === 169 && o[1] === 254) return "a link-local address (cloud metadata lives there)";
  if (o[0] >= 224 && o[0] <= 239) return "a multicast address";
  if (o[0] >= 240) return "a reserved or broadcast address";
  if (METADATA_V4.has(o.join("."))) return "a cloud metadata address";
  return undefined;
}

/** Why an IPv6 address is never dialed, or undefined. IPv4 inside it is judged as IPv4. */
export function ipv6Problem(ip: string): string | undefined {
  const w = ipv6Words(ip);
  if (!w) return "not an IPv6 address";
  if (w.every((x) => x === 0)) return "an unspecified address";
  if ((w[0] & 0xffc0) === 0xfe80) return "a link-local address";
  if ((w[0] & 0xff00) === 0xff00) return "a multicast address";
  if (METADATA_V6.has(w.map((x) => x.toString(16)).join(":"))) return "a cloud metadata address";
  const v4 = embeddedIpv4(w);
  if (v4) {
    const bad = ipv4Problem(v4);
    if (bad) return `${bad} (${v4} inside IPv6)`;
  }
  return undefined;
}

/** ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64) reach the IPv4 address inside. */
function embeddedIpv4(w: number[]): string | undefined {
  const mapped = w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff;
  const nat64 = w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0);
  if (!mapped && !nat64) return undefined;
  return [w[6] >> 8, w[6] & 0xff, w[7] >> 8, w[7] & 0xff].join(".");
}

/** The eight 16-bit words of an IPv6 address (a dotted IPv4 tail allowed), or undefined. */
export function ipv6Words(ip: string): number[] | undefined {
  let text = ip.split("%")[0].toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const o = dotted.slice(1).map(Number);
    if (o.some((n) => n > 255)) return undefined;
    text = `${text.slice(0, dotted.index)}${((o[0] << 8) | o[1]).toString(16)}:${
      ((o[2] << 8) | o[3]).toString(16)
    }`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (s: string) => s === "" ? [] : s.split(":");
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  if (all.some((x) => !/^[0-9a-f]{1,4}$/.test(x))) return undefined;
  return all.map((x) => parseInt(x, 16));
}
