// The relay's URLs. They name the port the edge bound, which with `--port 0` is known only once it
// listens; the edge part sets them then, and the handlers, which answer only after that, read them.
import { httpUrlOf } from "./nip11-document.ts";

export interface RelayUrls {
  /** ws:// URL clients use (the public URL when one was given), with a trailing slash. */
  ws: string;
  /** The same as http(s), no trailing slash: NIP-86 and NIP-98 `u`. */
  http: string;
  /** The address actually bound, e.g. ws://127.0.0.1:40123/. */
  local: string;
  /** The URLs a NIP-42 relay tag may name: the public one, and this host and port directly. */
  accepted: string[];
}

/** The URLs of a relay bound to `host`:`port`, public at `publicUrl` when given. */
export function relayUrls(host: string, port: number, publicUrl?: string): RelayUrls {
  const local = `ws://${hostForUrl(host)}:${port}/`;
  const ws = publicUrl ? withSlash(publicUrl) : local;
  return { ws, http: httpUrlOf(ws), local, accepted: acceptedUrls(ws, host, port) };
}

/** The URLs, set once by the part that binds the port and read by those that answer later. */
export interface LateUrls {
  /** Throws until set: a handler that runs before the edge listens is a wiring mistake. */
  get(): RelayUrls;
  set(urls: RelayUrls): void;
}

export function lateUrls(): LateUrls {
  let urls: RelayUrls | undefined;
  return {
    get() {
      if (urls === undefined) throw new Error("the relay's URLs are known once its edge listens");
      return urls;
    },
    set(value) {
      if (urls !== undefined) throw new Error("the relay's URLs are already set");
      urls = value;
    },
  };
}

function acceptedUrls(publicUrl: string, host: string, port: number): string[] {
  const hosts = new Set([hostForUrl(host)]);
  if (["127.0.0.1", "0.0.0.0", "::1", "::", "localhost"].includes(host)) {
    for (const h of ["127.0.0.1", "localhost", "[::1]"]) hosts.add(h);
  }
  return [publicUrl, ...[...hosts].map((h) => `ws://${h}:${port}/`)];
}

function hostForUrl(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}
