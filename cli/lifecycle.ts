/**
 * How a long-running command (relay, serve, consume, demo) ends: on SIGINT or SIGTERM, or when
 * the launcher that started it (`deno task`, `npx`) is gone, and always within STOP_DEADLINE_MS
 * of being asked. A stop that hangs (a final report to a dead relay, an HTTP stream that will not
 * finish) is cut by the deadline, never by the user reaching for SIGKILL.
 *
 * Why the launcher watch: `npx deno task serve` is three processes, and a supervisor that stops
 * the outer one (npm's) leaves `deno task` and the node running, orphaned; a `deno task` killed
 * with SIGKILL cannot pass anything on. So the node watches its launchers and stops with them.
 */
import { readFileSync } from "node:fs";

/** From the stop request to the process's end, whatever the parts are doing. */
export const STOP_DEADLINE_MS = 1700;
/** How often the launchers are looked at (reading two small /proc files each). */
const WATCH_MS = 200;

export type StopReason = "SIGINT" | "SIGTERM" | "launcher-gone";

/**
 * Resolves with the first stop request, then arms the deadline: the process exits at
 * STOP_DEADLINE_MS even if the caller's own stop never returns. A second signal exits at once.
 */
export function untilStopRequested(
  warn: (msg: string) => void = (msg) => logLine(msg),
): Promise<StopReason> {
  return new Promise((resolve) => {
    let requested = false;
    const request = (reason: StopReason) => {
      if (requested) {
        warn(`got ${reason} again while stopping; exiting now`);
        void exitAfterFlush(1);
        return;
      }
      requested = true;
      clearInterval(watch);
      const deadline = setTimeout(() => {
        warn(`stopping took more than ${STOP_DEADLINE_MS} ms; exiting without waiting further`);
        void exitAfterFlush(0);
      }, STOP_DEADLINE_MS);
      Deno.unrefTimer(deadline);
      if (reason === "launcher-gone") warn("the command that started this process is gone");
      resolve(reason);
    };
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => request(sig));
    }
    const launchers = findLaunchers(Deno.ppid);
    const watch = setInterval(() => {
      if (launchers.some((l) => !stillRunning(l))) request("launcher-gone");
    }, WATCH_MS);
    Deno.unrefTimer(watch);
  });
}

/** A process as /proc shows it: pid, parent, start time (against pid reuse) and command line. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** R, S, D…; Z for a process that ended but that its parent has not reaped yet. */
  state: string;
  startTime: string;
  cmdline: string[];
}

/** undefined when the process is gone or /proc is not there (not Linux). */
export function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (2nd field) is in parentheses and may itself hold spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a);
    return { pid, ppid: Number(fields[1]), state: fields[0], startTime: fields[19], cmdline };
  } catch {
    return undefined;
  }
}

/**
 * Is this process a launcher whose end should end us: `deno task`, npm's `npx`/`npm exec`, or a
 * shell that one of them runs the task through?
 */
export function isLauncher(cmdline: string[]): boolean {
  const line = cmdline.join(" ");
  return /(^|\/)deno\s+task\b/.test(line) ||
    /(^|\/)(npx|npm)(-cli\.js)?\s+(exec\b|deno\b)/.test(line) ||
    /^npm exec\b/.test(line);
}

function isShell(cmdline: string[]): boolean {
  return /(^|\/)(sh|bash|dash)$/.test(cmdline[0] ?? "") && cmdline[1] === "-c";
}

/** The chain of launchers (and the shells between them) above `ppid`; empty when there is none. */
export function findLaunchers(
  ppid: number,
  info: (pid: number) => ProcessInfo | undefined = processInfo,
): ProcessInfo[] {
  const chain: ProcessInfo[] = [];
  let found = false;
  for (let pid = ppid, depth = 0; pid > 1 && depth < 8; depth++) {
    const p = info(pid);
    if (!p) break;
    if (isLauncher(p.cmdline)) found = true;
    else if (!isShell(p.cmdline)) break;
    chain.push(p);
    pid = p.ppid;
  }
  return found ? chain : [];
}

function stillRunning(p: ProcessInfo): boolean {
  const now = processInfo(p.pid);
  // A killed launcher stays a zombie until its own parent reaps it: it is gone all the same.
  return now !== undefined && now.startTime === p.startTime && now.state !== "Z";
}

// --- Output that never stalls the process ---

/**
 * Lines written without blocking the event loop: Deno's console writes are synchronous, so a
 * reader that stops reading (a full pipe) would freeze every stream the node serves. Lines wait
 * in a bounded queue; past it they are dropped and counted, and a broken pipe ends writing.
 */
export interface LineWriter {
  write(line: string): void;
  /** Resolves when queued lines are written, or after `ms`. */
  flush(ms: number): Promise<void>;
}

export function createLineWriter(
  sink: { write(p: Uint8Array): Promise<number> },
  maxQueuedBytes = 1 << 20,
): LineWriter {
  const encoder = new TextEncoder();
  let queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let dropped = 0;
  let broken = false;
  let pumping: Promise<void> | undefined;

  async function writeAll(bytes: Uint8Array) {
    for (let at = 0; at < bytes.length;) at += await sink.write(bytes.subarray(at));
  }
  async function pump() {
    while (queue.length > 0 && !broken) {
      const batch = queue;
      queue = [];
      queuedBytes = 0;
      const joined = new Uint8Array(batch.reduce((n, b) => n + b.length, 0));
      let at = 0;
      for (const b of batch) joined.set(b, at), at += b.length;
      try {
        await writeAll(joined);
      } catch {
        broken = true; // no reader any more (EPIPE): nothing written later could arrive
      }
      if (dropped > 0 && queue.length === 0 && !broken) {
        queue.push(encoder.encode(`(${dropped} log lines dropped: the log reader fell behind)\n`));
        dropped = 0;
      }
    }
    pumping = undefined;
  }
  return {
    write(line) {
      if (broken) return;
      const bytes = encoder.encode(line.endsWith("\n") ? line : `${line}\n`);
      if (queuedBytes + bytes.length > maxQueuedBytes) {
        dropped++;
        return;
      }
      queue.push(bytes);
      queuedBytes += bytes.length;
      pumping ??= pump();
    },
    async flush(ms) {
      if (!pumping) return;
      // protocol's settleWithin does this too, but main.ts loads this file for every command,
      // and protocol/mod.ts would add ~50 ms of imports to each start.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        pumping,
        new Promise<void>((r) => timer = setTimeout(r, ms)),
      ]);
      clearTimeout(timer);
    },
  };
}

// Logs go to stderr through this writer. The few lines a command prints on stdout at start
// (where it listens) stay synchronous: nothing can have filled the pipe by then.
const stderrWriter = createLineWriter(Deno.stderr);

/** A log line on stderr, never blocking. */
export function logLine(line: string): void {
  stderrWriter.write(line);
}

/** Writes the queued log lines (for at most 300 ms: the reader may be gone), then exits. */
export async function exitAfterFlush(code: number): Promise<never> {
  await stderrWriter.flush(300);
  Deno.exit(code);
}
