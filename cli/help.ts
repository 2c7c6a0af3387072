/**
 * `grove <command> --help`: the command's line from the usage table and each of its flags with
 * what it does. The descriptions live here, one per flag name, shared by every command that takes
 * the flag; a flag without one fails the help test, so a new flag cannot go undocumented.
 */
import type { ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

const FLAG_HELP: Record<string, string> = {
  // every node and the relay
  data: "folder of this process's state (default $GROVE_HOME or ~/.grove)",
  nsec: "this node's key, nsec or hex (default GROVE_NSEC, or one kept in --data)",
  "log-format": "pretty (default) or json",
  name: "the name members see for this node or relay",
  "no-quic": "TCP only, no QUIC listener",
  host: "address to listen on (default 127.0.0.1; beyond loopback a node needs --api-key)",
  port: "HTTP port (default 9337 for nodes, 7777 for the relay; 0 picks a free one)",
  // nodes
  relay: "the relay's URL (default ws://127.0.0.1:7777)",
  "api-key": "require Authorization: Bearer KEY on the HTTP API",
  "allow-host": "a name this node may be reached by besides loopback",
  "allow-origin": "a web page origin that may call this node, with CORS",
  "max-body": "largest /v1 request body, e.g. 8MiB (the default)",
  model: "catalog id, hf://OWNER/REPO/FILE.gguf[@REV] or a local path (default stories260K)",
  gpu: "run the model on WebGPU instead of the CPU",
  "ctx-size": "context size in tokens (default the model's own, at most 4096)",
  "max-memory": "budget for weights plus the KV cache, e.g. 900KiB or 6GiB",
  "relay-port": "the demo relay's port (default: a free one)",
  // relay
  "public-url": "the ws(s):// URL clients use, when a proxy or domain sits in front",
  owner: "npub or hex of the relay's owner (a member with every right)",
  "mesh-port": "libp2p rendezvous port (default 7778)",
  open: "no membership needed to write or join the mesh",
  "trust-proxy": "take the client's address from X-Real-IP / X-Forwarded-For (with --public-url)",
  limit: "NAME=VALUE: set one of the limits NIP-11 lists (see SECURITY.md)",
  // members
  role: "member (default) or admin",
  // generate and tokenize
  prompt: "the text to continue (default empty: the model starts a story)",
  n: "how many tokens to generate",
  temp: "sampling temperature (0: greedy)",
  seed: "random seed for sampling",
  "top-k": "sample from the k most likely tokens",
  "top-p": "sample from the smallest set whose probability reaches p",
  "min-p": "drop tokens below p times the top token's probability",
  "repeat-penalty": "penalty for repeating recent tokens",
};

/** Thrown by flag parsing when the command line asks for help; main prints it and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly options: Options) {
    super("help requested");
  }
}

export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/** The flags of a command, one a line: `  --port VALUE, -p   what it does`. */
export function flagHelp(options: Options): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const what = FLAG_HELP[name];
    if (what === undefined) throw new Error(`flag --${name} has no description in cli/help.ts`);
    const value = o.type === "string" ? " VALUE" : "";
    const short = o.short ? `, -${o.short}` : "";
    return [`--${name}${value}${short}`, what + (o.multiple ? " (repeatable)" : "")];
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, what]) => `  ${f.padEnd(width)}  ${what}`).join("\n");
}
