// The command line's Logger: sentences for people (`pretty`) or one JSON object per line for
// machines (`json`), on stderr so stdout stays free for what a command prints as its result.
// Lines are written without blocking (lifecycle.ts): a stalled log reader never stalls serving.
import type { Logger } from "../protocol/mod.ts";
import { CliError } from "./cli-error.ts";
import { logLine } from "./lifecycle.ts";

export type LogFormat = "pretty" | "json";
type Level = "info" | "warn" | "error";

export function parseLogFormat(value: string | undefined): LogFormat {
  if (value === undefined || value === "pretty") return "pretty";
  if (value === "json") return "json";
  throw new CliError(`--log-format "${value}" is not one of pretty, json`);
}

export function createLogger(
  format: LogFormat,
  write: (line: string) => void = logLine,
  clock: () => Date = () => new Date(),
): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    const time = clock();
    if (format === "json") {
      write(JSON.stringify({ time: time.toISOString(), level, msg, ...fields }));
      return;
    }
    const extra = Object.entries(fields ?? {}).map(([k, v]) => ` ${k}=${pretty(v)}`).join("");
    write(`${time.toTimeString().slice(0, 8)} ${level.padEnd(5)} ${msg}${extra}`);
  };
  return {
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
  };
}

function pretty(v: unknown): string {
  if (typeof v === "string") return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}
