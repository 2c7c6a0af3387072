/**
 * What `serve`, `consume` and `demo` share (docs/http-api.md#flags): the flags of a node, the data
 * folder, the HTTP listener with its "listening" line, and waiting for SIGINT/SIGTERM.
 */
import { join } from "node:path";
import { CliError } from "./cli-error.ts";
import { numberFlag } from "./flags.ts";
import { exitAfterFlush, untilStopRequested } from "./lifecycle.ts";
import { createLogger, parseLogFormat } from "./log.ts";
import { type Logger, settleWithin } from "../protocol/mod.ts";
import { DEFAULT_MAX_BODY, hostnameOf, isLoopbackName } from "../web/mod.ts";

export const NODE_FLAGS = {
  relay: { type: "string" },
  data: { type: "string" },
  nsec: { type: "string" },
  "log-format": { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  "mesh-host": { type: "string" },
  "api-key": { type: "string" },
  name: { type: "string" },
  "no-quic": { type: "boolean" },
  "allow-host": { type: "string", multiple: true },
  "allow-origin": { type: "string", multiple: true },
  "max-body": { type: "string" },
} as const;

export interface NodeOptions {
  relayUrl: string;
  dataDir: string;
  nsec?: string;
  log: Logger;
  port: number;
  host: string;
  /** The IPv4 address the node's libp2p listens on (TCP and QUIC); undefined: loopback. */
  meshHost?: string;
  apiKey?: string;
  name?: string;
  quic: boolean;
  /** Names besides loopback and the bound addresses that `Host` may carry (docs/http-api.md). */
  allowHosts: string[];
  /** Web pages (origins, or "*") that may use the node besides its own dashboard. */
  allowOrigins: string[];
  /** The largest body a /v1 request may have, in bytes. */
  maxBody: number;
}

type NodeFlagValues = { [K in keyof typeof NODE_FLAGS]?: string | boolean | string[] };

export function nodeOptions(f: NodeFlagValues): NodeOptions {
  const str = (k: keyof typeof NODE_FLAGS) => f[k] as string | undefined;
  const relayUrl = str("relay") ?? "ws://127.0.0.1:7777";
  if (!/^wss?:\/\/[^/]/.test(relayUrl)) {
    throw new CliError(`--relay "${relayUrl}" must be a ws:// or wss:// URL`);
  }
  const apiKey = str("api-key");
  if (apiKey !== undefined && apiKey.trim() === "") throw new CliError("--api-key is empty");
  return {
    relayUrl,
    dataDir: str("data") ?? defaultDataDir(),
    nsec: str("nsec"),
    log: createLogger(parseLogFormat(str("log-format"))),
    port: numberFlag("port", str("port"), 9337, (n) => Number.isInteger(n) && n >= 0 && n < 65536),
    host: str("host") ?? "127.0.0.1",
    meshHost: meshHost(str("mesh-host")),
    apiKey,
    name: str("name"),
    quic: !(f["no-quic"] ?? false),
    allowHosts: listFlag(f["allow-host"]).map(allowedHost),
    allowOrigins: listFlag(f["allow-origin"]).map(allowedOrigin),
    maxBody: f["max-body"] === undefined
      ? DEFAULT_MAX_BODY
      : positiveSize("max-body", f["max-body"] as string),
  };
}

/**
 * docs/http-api.md#flags: a node bound beyond loopback demands --api-key, since its /v1 hands the
 * mesh (and a serving node's own model) to whoever reaches the port.
 */
export function requireApiKeyBeyondLoopback(opts: NodeOptions, what = "the endpoint"): void {
  if (isLoopback(opts.host) || opts.apiKey !== undefined) return;
  throw new CliError(
    `--host ${opts.host} opens ${what} beyond this machine: give --api-key KEY too, ` +
      "or non-members could use the mesh through this node",
  );
}

function meshHost(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(".");
  if (parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    return value;
  }
  throw new CliError(
    `--mesh-host "${value}" is not an IPv4 address: give one of this machine's, or 0.0.0.0 for all`,
  );
}

/** Repeated flags and comma-separated lists, both: `--allow-host a,b --allow-host c`. */
function listFlag(v: string | boolean | string[] | undefined): string[] {
  const all = Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  return all.flatMap((x) => x.split(",")).map((x) => x.trim()).filter((x) => x !== "");
}

function allowedHost(value: string): string {
  const name = hostnameOf(value);
  const bare = value.trim().replace(/^\[|\]$/g, "").toLowerCase().replace(/\.$/, "");
  if (name !== bare || !/^[a-z0-9_.:-]+$/.test(name)) {
    throw new CliError(
      `--allow-host "${value}" is not a host name: give the name alone, without scheme, ` +
        "port or path (any port is accepted), e.g. --allow-host grove.lan",
    );
  }
  return name;
}

/** An origin as browsers send it: http(s) normalized by URL; others (vscode-webview://…) as given. */
function allowedOrigin(value: string): string {
  if (value === "*") return value;
  const trimmed = value.trim().replace(/\/$/, "").toLowerCase();
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]+$/.test(trimmed)) {
    return /^https?:/.test(trimmed) ? new URL(trimmed).origin : trimmed;
  }
  throw new CliError(
    `--allow-origin "${value}" is not an origin: give scheme, host and port as the page's ` +
      "address bar shows them, without a path, e.g. --allow-origin http://localhost:3000 (or *)",
  );
}

function positiveSize(flag: string, value: string): number {
  const n = parseSize(flag, value);
  if (n < 1024) throw new CliError(`--${flag} "${value}" is below 1 KiB: no request would fit`);
  return n;
}

export function defaultDataDir(): string {
  const home = Deno.env.get("GROVE_HOME");
  if (home) return home;
  const user = Deno.env.get("HOME");
  if (!user) throw new CliError("no --data given and neither GROVE_HOME nor HOME is set");
  return join(user, ".grove");
}

export function isLoopback(host: string): boolean {
  return isLoopbackName(hostnameOf(host));
}

/** "900KiB", "6GiB", "512MB", "1000" (bytes) → bytes; throws a CliError naming the flag. */
export function parseSize(flag: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$/i.exec(value);
  if (!m) throw new CliError(`--${flag} "${value}" is not a size like 900KiB, 512MB or 6GiB`);
  const power = " KMGT".indexOf(m[2].toUpperCase() || " ");
  const base = m[3] ? 1024 : 1000;
  return Math.floor(Number(m[1]) * base ** power);
}

/** How long a stopping node lets open HTTP responses finish. */
const HTTP_SHUTDOWN_GRACE_MS = 500;

export interface HttpServer {
  url: string;
  shutdown(): Promise<void>;
}

/** Deno.serve on host:port (0 picks one); prints `grove node listening on URL/v1`. */
export function serveHttp(
  opts: { host: string; port: number; label?: string },
  handler: (req: Request) => Promise<Response>,
): HttpServer {
  const server = Deno.serve({ hostname: opts.host, port: opts.port, onListen: () => {} }, handler);
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${host}:${addr.port}`;
  console.log(`grove ${opts.label ?? "node"} listening on ${url}/v1`);
  return {
    url,
    // A graceful shutdown waits for every open response, and a stream to a client that stopped
    // reading never ends: give them a moment, then let the process's exit cut the rest.
    shutdown: () => settleWithin(server.shutdown(), HTTP_SHUTDOWN_GRACE_MS),
  };
}

/**
 * Resolves with the first SIGINT or SIGTERM, or when the launcher (`deno task`, `npx`) that
 * started the node is gone; from then on the process ends within STOP_DEADLINE_MS whatever
 * its stop() does (lifecycle.ts).
 */
export function untilSignal(): Promise<string> {
  return untilStopRequested();
}

/**
 * libp2p leaves handles open after stop() (mortice's BroadcastChannel, circuit reservations'
 * timers), so a node process ends itself once everything is stopped.
 */
export function exitNow(code: number): Promise<never> {
  return exitAfterFlush(code);
}
