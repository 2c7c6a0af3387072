/**
 * What `serve`, `consume` and `demo` share (SPEC §1): the flags of a node, the data folder, the
 * HTTP listener with its "listening" line, and waiting for SIGINT/SIGTERM.
 */
import { join } from "node:path";
import { CliError } from "./errors.ts";
import { numberFlag } from "./flags.ts";
import { createLogger, parseLogFormat } from "./log.ts";
import type { Logger } from "../mesh/log.ts";
import { hostnameOf, isLoopbackName } from "../web/mod.ts";

export const NODE_FLAGS = {
  relay: { type: "string" },
  data: { type: "string" },
  nsec: { type: "string" },
  "log-format": { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  "api-key": { type: "string" },
  name: { type: "string" },
  "no-quic": { type: "boolean" },
} as const;

export interface NodeOptions {
  relayUrl: string;
  dataDir: string;
  nsec?: string;
  log: Logger;
  port: number;
  host: string;
  apiKey?: string;
  name?: string;
  quic: boolean;
}

type NodeFlagValues = { [K in keyof typeof NODE_FLAGS]?: string | boolean };

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
    apiKey,
    name: str("name"),
    quic: !(f["no-quic"] ?? false),
  };
}

/**
 * SPEC §1: a node bound beyond loopback demands --api-key, since its /v1 hands the mesh (and a
 * serving node's own model) to whoever reaches the port.
 */
export function requireApiKeyBeyondLoopback(opts: NodeOptions, what = "the endpoint"): void {
  if (isLoopback(opts.host) || opts.apiKey !== undefined) return;
  throw new CliError(
    `--host ${opts.host} opens ${what} beyond this machine: give --api-key KEY too, ` +
      "or non-members could use the mesh through this node",
  );
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
  return { url, shutdown: () => server.shutdown() };
}

/** Resolves with the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
}

/**
 * libp2p leaves handles open after stop() (NOTES.md: mortice's BroadcastChannel, circuit
 * reservations), so a node process ends itself once everything is stopped.
 */
export function exitNow(code: number): never {
  Deno.exit(code);
}
