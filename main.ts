/**
 * Grove's command line: one program, the role picked by the command.
 */
import { generateCommand } from "./cli/generate-command.ts";
import { tokenizeCommand } from "./cli/tokenize-command.ts";
import { CliError } from "./cli/cli-error.ts";
import { flagHelp, HelpRequested } from "./cli/help.ts";
import { exitAfterFlush } from "./cli/lifecycle.ts";

const USAGE = `usage: grove <command> [flags]

commands:
  relay      the relay: Nostr relay, membership, mesh admission, rendezvous
  serve      a serving node: loads a model and offers it to members (--gpu for WebGPU)
  consume    a client node: a local OpenAI-compatible endpoint backed by the mesh
  demo       relay + serving node + client node in one process
  members    membership administration: add|remove|list
  generate   --model REF [--prompt TEXT] [-n N] [--temp T] [--seed S] [--gpu]
  tokenize   --model REF  (text on stdin, token ids on stdout)
`;

export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  try {
    switch (command) {
      case "generate":
        return await generateCommand(rest);
      case "tokenize":
        return await tokenizeCommand(rest);
      case "relay":
        // Loaded on demand: the relay pulls in libp2p and SQLite, which other commands never need.
        return await (await import("./cli/relay-command.ts")).relayCommand(rest);
      case "members":
        return await (await import("./cli/members-command.ts")).membersCommand(rest);
      // The node roles pull in libp2p and the engine: loaded on demand, like the relay.
      case "serve":
        return await (await import("./cli/serve-command.ts")).serveCommand(rest);
      case "consume":
        return await (await import("./cli/consume-command.ts")).consumeCommand(rest);
      case "demo":
        return await (await import("./cli/demo-command.ts")).demoCommand(rest);
      default:
        console.error(`grove: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof HelpRequested) {
      const line = USAGE.split("\n").find((l) => l.startsWith(`  ${command} `))?.trim() ?? command;
      console.log(`usage: grove ${command} [flags]\n  ${line}\n\nflags:\n${flagHelp(err.options)}`);
      return 0;
    }
    if (err instanceof CliError) {
      console.error(`grove ${command}: ${err.message}`);
      return 2;
    }
    console.error(`grove ${command}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) await exitAfterFlush(await main(Deno.args));
