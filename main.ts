/**
 * Grove's command line: one program, the role picked by the command.
 */
import { generateCommand } from "./cli/generate-command.ts";
import { tokenizeCommand } from "./cli/tokenize-command.ts";
import { CliError } from "./cli/cli-error.ts";
import { commandHelp, HelpRequested, usageText } from "./cli/help.ts";
import { exitAfterFlush } from "./cli/lifecycle.ts";

export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "help" && rest.length > 0) return await main([rest[0], "--help"]);
  if (!command || command === "help" || command === "--help" || command === "-h") {
    console.log(usageText());
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
        console.error(`grove: unknown command "${command}"\n\n${usageText()}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(commandHelp(command, err.options));
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
