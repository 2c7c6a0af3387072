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
  return parseCommandLine(args, options, false).values;
}

/** parseFlags for a command that also takes words (`members add NPUB`): values and positionals. */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
  allowPositionals = true,
) {
  if (wantsHelp(args)) throw new HelpRequested(options);
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const unknown = /^Unknown option '(-{1,2}[^']+)'/.exec(message)?.[1];
    if (unknown === undefined) throw new CliError(message);
    const near = closestFlag(unknown.replace(/^-+/, ""), Object.keys(options));
    throw new CliError(
      `unknown option ${unknown}` + (near ? `: did you mean --${near}?` : "") +
        " (--help lists the flags)",
    );
  }
}

/** The known flag nearest to a mistyped one (a typo or two away), if there is one. */
export function closestFlag(typed: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const d = editDistance(typed, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  // Farther than a third of the word is another word, not a typo of it.
  return bestDistance <= Math.max(1, Math.floor(typed.length / 3)) ? best : undefined;
}

/** Levenshtein distance with adjacent swaps counted as one edit ("modle" → "model"). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
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
