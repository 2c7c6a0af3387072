// Download progress for people: a redrawn bar on a terminal, a plain line every few seconds
// in logs (a bar's carriage returns make a mess of a log file).
import type { DownloadProgress } from "./download.ts";

export interface ProgressReporterOptions {
  label: string; // what is downloading, e.g. the file name
  isTty?: boolean; // default: whether stderr is a terminal
  write?: (text: string) => void; // default: stderr
  now?: () => number; // milliseconds; injectable so tests need no real clock
  logIntervalMs?: number; // plain-line mode: one line per interval (default 5000)
  redrawIntervalMs?: number; // bar mode: at most one redraw per interval (default 100)
  barWidth?: number;
}

const MIB = 1024 * 1024;

/** Returns an `onProgress` callback for downloadFile/resolveModel. */
export function createProgressReporter(
  options: ProgressReporterOptions,
): (progress: DownloadProgress) => void {
  const now = options.now ?? (() => performance.now());
  const write = options.write ?? writeStderr;
  const isTty = options.isTty ?? Deno.stderr.isTerminal();
  const interval = isTty ? options.redrawIntervalMs ?? 100 : options.logIntervalMs ?? 5000;
  let startedAt: number | undefined;
  let lastDraw = -Infinity;
  let finished = false;

  return (p) => {
    if (finished) return;
    const t = now();
    if (startedAt === undefined) {
      startedAt = t;
      if (!isTty) {
        const size = p.total === undefined ? "" : ` (${formatMiB(p.total)})`;
        const resume = p.resumedFrom > 0 ? `, resuming at ${formatMiB(p.resumedFrom)}` : "";
        write(`${options.label}: downloading${size} from ${p.url}${resume}\n`);
        lastDraw = t;
      }
    }
    const elapsed = (t - startedAt) / 1000;
    // Speed counts only this session's bytes: resumed bytes did not arrive now.
    const rate = elapsed > 0 ? (p.received - p.resumedFrom) / elapsed : 0;
    if (p.done) {
      finished = true;
      if (isTty) {
        write(`\r\x1b[2K${options.label} ${renderBar(p, options.barWidth)} ${line(p, rate)}\n`);
      } else {write(
          `${options.label}: done, ${formatMiB(p.received)} in ${formatDuration(elapsed)}\n`,
        );}
      return;
    }
    if (t - lastDraw < interval) return;
    lastDraw = t;
    if (isTty) {
      write(`\r\x1b[2K${options.label} ${renderBar(p, options.barWidth)} ${line(p, rate)}`);
    } else write(`${options.label}: ${line(p, rate)}\n`);
  };
}

function line(p: DownloadProgress, rate: number): string {
  return formatProgressLine(p.received, p.total, rate);
}

/** "42% 12.3/29.0 MiB 5.1 MiB/s ETA 0:03"; without a total just the bytes and the speed. */
export function formatProgressLine(
  received: number,
  total: number | undefined,
  bytesPerSecond: number,
): string {
  const speed = `${(bytesPerSecond / MIB).toFixed(1)} MiB/s`;
  if (total === undefined || total <= 0) return `${formatMiB(received)} ${speed}`;
  const percent = Math.min(100, Math.floor((received / total) * 100));
  const eta = formatDuration(etaSeconds(received, total, bytesPerSecond) ?? NaN);
  const mib = `${(received / MIB).toFixed(1)}/${(total / MIB).toFixed(1)} MiB`;
  return `${percent}% ${mib} ${speed} ETA ${eta}`;
}

/** Seconds left at `bytesPerSecond`; null when the total or the rate is unknown. */
export function etaSeconds(
  received: number,
  total: number | null | undefined,
  bytesPerSecond: number,
): number | null {
  if (total == null || total <= 0 || !(bytesPerSecond > 0)) return null;
  return Math.max(0, total - received) / bytesPerSecond;
}

export function renderBar(p: DownloadProgress, width = 30): string {
  if (p.total === undefined || p.total <= 0) return `[${"?".repeat(width)}]`;
  const filled = Math.min(width, Math.floor((p.received / p.total) * width));
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

export function formatMiB(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

/** 65 -> "1:05", 3723 -> "1:02:03". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

const encoder = new TextEncoder();
function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  for (let n = 0; n < bytes.length;) n += Deno.stderr.writeSync(bytes.subarray(n));
}
