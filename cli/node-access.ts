/**
 * Who may reach a node's HTTP port by name and from which pages (docs/http-api.md#browsers), from
 * its flags: loopback always, the address it is bound to (all of the machine's own addresses when
 * bound to 0.0.0.0 or ::), `--allow-host` names and `--allow-origin` pages.
 */
import { type BrowserAccess, hostnameOf, isIpLiteral } from "../web/mod.ts";
import type { NodeOptions } from "./node-flags.ts";

/** Interfaces come and go (DHCP, VPNs): an unknown address re-reads them, this often at most. */
export const INTERFACES_REREAD_MS = 5_000;

const WILDCARDS = new Set(["0.0.0.0", "::", "0:0:0:0:0:0:0:0"]);

export function browserAccess(opts: Pick<NodeOptions, "host" | "allowHosts" | "allowOrigins">) {
  const access: BrowserAccess = {
    hosts: opts.allowHosts,
    origins: opts.allowOrigins,
    isOwnAddress: ownAddresses(opts.host),
  };
  return access;
}

/**
 * Whether a name is an address the node listens on. Bound to one address, that address; bound
 * to a wildcard, the wildcard itself and every interface's address. Only address literals can
 * match a re-read, so a page's name never costs one.
 */
export function ownAddresses(
  bound: string,
  read: () => string[] = interfaceAddresses,
  now: () => number = Date.now,
): (name: string) => boolean {
  const host = hostnameOf(bound);
  if (!WILDCARDS.has(host)) return (name) => name === host;
  let known = new Set(read());
  let readAt = now();
  return (name) => {
    if (name === host || known.has(name)) return true;
    if (!isIpLiteral(name) || now() - readAt < INTERFACES_REREAD_MS) return false;
    known = new Set(read());
    readAt = now();
    return known.has(name);
  };
}

function interfaceAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => hostnameOf(i.address));
  } catch {
    return []; // without --allow-sys: loopback and --allow-host still work
  }
}
