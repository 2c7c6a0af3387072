/**
 * `grove tokenize`: text on stdin, token ids (space-separated, one line) on stdout.
 * Only the tokenizer is built: no weights are read.
 */
import { openGguf, tokenizerFromMetadata } from "../inference/mod.ts";
import { parseFlags } from "./flags.ts";
import { resolveModelPath } from "./load-model.ts";

export async function tokenizeCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, { model: { type: "string", short: "m" } });
  const path = await resolveModelPath(flags.model);
  const tokenizer = tokenizerFromMetadata((await openGguf(path)).metadata);
  const text = await new Response(Deno.stdin.readable).text();
  console.log(tokenizer.encode(text).join(" "));
  return 0;
}
