// `grove relay`: runs the relay until SIGINT or SIGTERM (docs/operating-a-relay.md). Prints where
// it listens and its key on stdout; everything else goes to the log on stderr.
import { join } from "node:path";
import { npubEncode } from "nostr-tools/nip19";
import { DEFAULT_LIMITS, type RelayInit, type RelayLimits, startRelay } from "../relay/mod.ts";
import { CliError } from "./cli-error.ts";
import { numberFlag, parseFlags } from "./flags.ts";
import { createLogger, parseLogFormat } from "./log.ts";
import { untilStopRequested } from "./lifecycle.ts";

const FLAGS = {
  port: { type: "string" },
  host: { type: "string" },
  "public-url": { type: "string" },
  owner: { type: "string" },
  "mesh-port": { type: "string" },
  open: { type: "boolean" },
  data: { type: "string" },
  name: { type: "string" },
  "no-quic": { type: "boolean" },
  "log-format": { type: "string" },
  "trust-proxy": { type: "boolean" },
  limit: { type: "string", multiple: true },
} as const;

const isPort = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;

/** The relay's start options from its command line; throws CliError naming a bad flag. */
export function relayInitFromArgs(args: string[]): RelayInit {
  const f = parseFlags(args, FLAGS);
  const publicUrl = f["public-url"];
  if (publicUrl !== undefined && !/^wss?:\/\/[^/]/.test(publicUrl)) {
    throw new CliError(`--public-url "${publicUrl}" must be a ws:// or wss:// URL`);
  }
  const meshPort = numberFlag("mesh-port", f["mesh-port"], 7778, (n) => isPort(n) || n === -1);
  return {
    host: f.host ?? "127.0.0.1",
    port: numberFlag("port", f.port, 7777, isPort),
    publicUrl,
    owner: f.owner,
    meshPort,
    open: f.open ?? false,
    quic: !(f["no-quic"] ?? false),
    name: f.name,
    dataDir: f.data ?? defaultDataDir(),
    trustProxy: f["trust-proxy"] ?? false,
    limits: parseLimits(f.limit ?? []),
    log: createLogger(parseLogFormat(f["log-format"])),
  };
}

/** `--limit NAME=VALUE`, repeatable: NAME is a field of DEFAULT_LIMITS (relay/config.ts). */
export function parseLimits(specs: string[]): Partial<RelayLimits> {
  const out: Partial<RelayLimits> = {};
  const names = Object.keys(DEFAULT_LIMITS) as (keyof RelayLimits)[];
  for (const spec of specs) {
    const [name, value] = spec.split("=", 2);
    if (!names.includes(name as keyof RelayLimits)) {
      throw new CliError(`--limit "${spec}": unknown limit; known: ${names.join(", ")}`);
    }
    const n = Number(value);
    if (value === undefined || value.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw new CliError(`--limit "${spec}" needs a positive number, e.g. ${name}=100`);
    }
    out[name as keyof RelayLimits] = n;
  }
  return out;
}

export async function relayCommand(args: string[]): Promise<number> {
  const init = relayInitFromArgs(args);
  const relay = await startRelay(init);
  console.log(`relay listening on ${relay.localUrl}`);
  if (relay.url !== relay.localUrl) console.log(`public URL ${relay.url}`);
  console.log(`relay pubkey ${npubEncode(relay.pubkey)} (${relay.pubkey})`);
  console.log(`mesh ${relay.meshId}, admission at ${relay.httpUrl}/admission`);
  for (const addr of relay.rendezvous) console.log(`rendezvous ${addr}`);
  console.log(`data in ${init.dataDir}`);

  // Ends on SIGINT/SIGTERM or with its launcher, within STOP_DEADLINE_MS whatever stop() does.
  const signal = await untilStopRequested();
  init.log?.info(`got ${signal}, stopping the relay`);
  await relay.stop();
  init.log?.info("relay stopped");
  return 0;
}

function defaultDataDir(): string {
  const home = Deno.env.get("GROVE_HOME");
  if (home) return home;
  const user = Deno.env.get("HOME");
  if (!user) throw new CliError("no --data given and neither GROVE_HOME nor HOME is set");
  return join(user, ".grove");
}
