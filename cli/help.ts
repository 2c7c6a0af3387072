/**
 * `grove --help` and `grove <command> --help`: the commands, and for one command what it does, each
 * of its flags with what it does and its default, and an example. The flag descriptions live here,
 * one per flag name, shared by every command that takes the flag (a command may word one its own
 * way); a flag without one fails the help test, so a new flag cannot go undocumented.
 */
import type { ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

interface CommandHelp {
  /** One line: what the command is. */
  summary: string;
  /** The command line's shape when it takes more than flags. */
  usage?: string;
  examples: string[];
  /** This command's own wording of a shared flag. */
  flags?: Record<string, string>;
}

export const COMMANDS: Record<string, CommandHelp> = {
  relay: {
    summary: "the relay: Nostr relay, membership, mesh admission, rendezvous",
    examples: ["npx deno task relay --owner npub1... --data ~/.grove/relay"],
    flags: {
      data: "folder of the relay's state (default $GROVE_HOME or ~/.grove)",
      host: "address to listen on (default 127.0.0.1)",
      port: "port of the relay's WebSocket and HTTP (default 7777; 0 picks a free one)",
      name: 'the name the relay gives in NIP-11 (default "grove relay")',
    },
  },
  serve: {
    summary: "a serving node: loads a model and offers it to members (--gpu for WebGPU)",
    examples: ["npx deno task serve --model stories260K --relay ws://127.0.0.1:7777"],
  },
  consume: {
    summary: "a client node: a local OpenAI-compatible endpoint backed by the mesh",
    examples: ["npx deno task consume --relay ws://127.0.0.1:7777 --port 9337"],
  },
  demo: {
    summary: "relay + serving node + client node in one process (stories260K, shipped with Grove)",
    examples: ["npx deno task demo"],
    flags: { relay: "not taken: the demo runs its own relay (--relay-port sets its port)" },
  },
  members: {
    summary: "membership administration: add|remove|list, on a relay's data folder or over NIP-86",
    usage: "grove members add|remove|list [npub|hex] [--role member|admin] " +
      "(--data DIR | --relay URL --nsec NSEC)",
    examples: [
      "npx deno task members add npub1... --data ~/.grove/relay",
      "npx deno task members list --relay wss://relay.example --nsec nsec1...",
    ],
    flags: {
      data: "the data folder of a relay on this machine (its relay.sqlite)",
      relay: "a relay's URL, managed over NIP-86 with --nsec",
      nsec: "an owner's or admin's key for --relay, nsec or hex (default GROVE_NSEC)",
    },
  },
  generate: {
    summary: "a completion on this machine: --model REF [--prompt TEXT] [-n N] [--temp T] [--gpu]",
    examples: ['npx deno task generate --model stories260K --prompt "Once upon a time" -n 60'],
    flags: { model: "catalog id, hf://OWNER/REPO/FILE.gguf[@REV] or a local path (required)" },
  },
  tokenize: {
    summary: "token ids of the text on stdin: --model REF",
    examples: ['echo "Hello world" | npx deno task tokenize --model stories260K'],
    flags: { model: "catalog id, hf://OWNER/REPO/FILE.gguf[@REV] or a local path (required)" },
  },
};

/** `grove --help`: every command, one line each, and where to go next. */
export function usageText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([c, h]) => `  ${c.padEnd(width)}  ${h.summary}`);
  return [
    "usage: grove <command> [flags]",
    "",
    "commands:",
    ...lines,
    "",
    "`grove <command> --help` lists a command's flags, their defaults and an example.",
    "",
    "example:",
    "  npx deno task demo",
    "",
  ].join("\n");
}

/** `grove <command> --help`. */
export function commandHelp(command: string, options: Options): string {
  const help = COMMANDS[command];
  const lines = [`usage: grove ${command} [flags]`];
  if (help?.usage) lines.push(`       ${help.usage}`);
  if (help) lines.push(`  ${help.summary}`);
  lines.push("", "flags:", flagHelp(options, help?.flags));
  if (help) lines.push("", `example${help.examples.length > 1 ? "s" : ""}:`);
  for (const example of help?.examples ?? []) lines.push(`  ${example}`);
  return lines.join("\n");
}

const FLAG_HELP: Record<string, string> = {
  // every node and the relay
  data: "folder of this process's state (default $GROVE_HOME or ~/.grove)",
  nsec: "this node's key, nsec or hex (default GROVE_NSEC, or one kept in --data)",
  "log-format": "pretty (default) or json",
  name: "the name members see for this node (default the start of its npub)",
  "no-quic": "TCP only, no QUIC listener (default: QUIC too)",
  host: "address to listen on (default 127.0.0.1; beyond loopback a node needs --api-key)",
  "mesh-host": "IPv4 address the mesh (libp2p) listens on (default 127.0.0.1; 0.0.0.0 for all)",
  port: "HTTP port (default 9337 for nodes, 7777 for the relay; 0 picks a free one)",
  // nodes
  relay: "the relay's URL (default ws://127.0.0.1:7777)",
  "api-key": "require Authorization: Bearer KEY on the HTTP API (default none, loopback only)",
  "allow-host": "a name this node may be reached by besides loopback (default none)",
  "allow-origin": "a web page origin that may call this node, with CORS (default none)",
  "max-body": "largest /v1 request body, e.g. 8MiB (the default)",
  model: "catalog id, hf://OWNER/REPO/FILE.gguf[@REV] or a local path (default stories260K)",
  gpu: "run the model on WebGPU instead of the CPU (default the CPU)",
  "ctx-size":
    "context size in tokens (default the model's own where memory allows, else the most that fits; at most 4096 with --gpu)",
  "max-memory": "budget for weights, KV cache and scratch, e.g. 6GiB (default what it needs)",
  "relay-port": "the demo relay's port (default: a free one)",
  // relay
  "public-url":
    "the ws(s):// URL clients use, when a proxy sits in front (default ws://HOST:PORT/)",
  owner: "npub or hex of the relay's owner, a member with every right (default none)",
  "mesh-port": "libp2p rendezvous port (default 7778)",
  open: "no membership needed to write or join the mesh (default: members only)",
  "trust-proxy": "client address from X-Real-IP / X-Forwarded-For (default: the socket's)",
  limit: "NAME=VALUE: set one of the limits NIP-11 lists (see SECURITY.md)",
  // members
  role: "member (default) or admin",
  // generate and tokenize
  prompt: "the text to continue (default empty: the model starts a story)",
  n: "how many tokens to generate (default 128)",
  temp: "sampling temperature, 0 is greedy (default 0.8)",
  seed: "random seed for sampling (default a random one)",
  "top-k": "sample from the k most likely tokens (default 40)",
  "top-p": "sample from the smallest set whose probability reaches p (default 0.95)",
  "min-p": "drop tokens below p times the top token's probability (default 0.05)",
  "repeat-penalty": "penalty for repeating recent tokens (default 1: none)",
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
export function flagHelp(options: Options, own: Record<string, string> = {}): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const what = own[name] ?? FLAG_HELP[name];
    if (what === undefined) throw new Error(`flag --${name} has no description in cli/help.ts`);
    const value = o.type === "string" ? " VALUE" : "";
    const short = o.short ? `, -${o.short}` : "";
    return [`--${name}${value}${short}`, what + (o.multiple ? " (repeatable)" : "")];
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, what]) => `  ${f.padEnd(width)}  ${what}`).join("\n");
}
