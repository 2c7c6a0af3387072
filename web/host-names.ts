/**
 * Host names as a node compares them: the `Host` header's name without its port, in lower case,
 * IPv6 without brackets, and which of them are this machine by definition (loopback).
 */

/** "Rebind.Example:9337" → "rebind.example"; "[::1]:9337" → "::1"; "localhost." → "localhost". */
export function hostnameOf(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith("[")) {
    const end = name.indexOf("]");
    name = end < 0 ? name.slice(1) : name.slice(1, end);
  } else if (name.indexOf(":") === name.lastIndexOf(":")) {
    // One colon: name:port. More than one without brackets: a bare IPv6 address, kept whole.
    const colon = name.indexOf(":");
    if (colon >= 0) name = name.slice(0, colon);
  }
  const zone = name.indexOf("%"); // fe80::1%eth0: the zone names an interface, not a host
  if (zone >= 0) name = name.slice(0, zone);
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

const IPV4_LOOPBACK = /^127(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Loopback by definition, whatever DNS says: 127.0.0.0/8, ::1, `localhost` and `*.localhost`
 * (RFC 6761: browsers resolve these to loopback themselves, so no page can rebind them).
 * A name that merely starts with "127." (127.0.0.1.evil.example) is not.
 */
export function isLoopbackName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost") || name === "::1" ||
    name === "0:0:0:0:0:0:0:1" || IPV4_LOOPBACK.test(name);
}

/** An IPv4 or IPv6 literal: a name DNS cannot re-point. */
export function isIpLiteral(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || (name.includes(":") && /^[0-9a-f:.]+$/.test(name));
}
