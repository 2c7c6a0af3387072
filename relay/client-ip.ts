// Which address a request comes from, and the key its per-address limits count under.
//
// Without --trust-proxy the socket's peer is the client and forwarding headers are ignored
// (anyone can write them). With it, a TLS proxy in front (--public-url) is the socket's peer
// and names the client: X-Real-IP, else the last hop of X-Forwarded-For, which is the one the
// proxy itself appended (earlier hops come from the client and prove nothing).
import { isIP } from "node:net";

type HeaderValue = string | string[] | undefined;

export function clientIp(
  socketIp: string | undefined,
  headers: Record<string, HeaderValue>,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const real = single(headers["x-real-ip"])?.trim();
    if (real && isIP(stripBrackets(real))) return stripBrackets(real);
    const hops = single(headers["x-forwarded-for"])?.split(",").map((h) => h.trim());
    const last = hops?.at(-1);
    if (last && isIP(stripBrackets(last))) return stripBrackets(last);
  }
  return socketIp ?? "unknown";
}

/**
 * What per-address limits count under: an IPv4 address as is (also when IPv4-mapped), an IPv6
 * address by its /64, which is what one subscriber usually holds.
 */
export function ipKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (isIP(ip) !== 6) return ip;
  return `${expandIpv6(ip).slice(0, 4).join(":")}::/64`;
}

function expandIpv6(ip: string): string[] {
  const [head, tail] = ip.split("%")[0].split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = Array(Math.max(0, 8 - left.length - right.length)).fill("0");
  return [...left, ...(tail === undefined ? [] : fill), ...right]
    .map((w) => w.toLowerCase().replace(/^0+(?=.)/, ""));
}

function single(v: HeaderValue): string | undefined {
  return Array.isArray(v) ? v.at(-1) : v;
}

function stripBrackets(ip: string): string {
  return ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
}
