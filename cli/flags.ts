/**
 * Flag parsing for the local tools, with errors that name the flag.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { CliError } from "./cli-error.ts";
import { HelpRequested, wantsHelp } from "./help.ts";

export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
) {
  if (wantsHelp(args)) throw new HelpRequested(options);
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  check: (n: number) => boolean = Number.isFinite,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !check(n)) {
    throw new CliError(`--${name} "${value}" is not a valid value`);
  }
  return n;
}
