/**
 * The one way tests wait for something to happen: probe it until it has. A fixed sleep
 * instead is either too short on a loaded machine (a flaky test) or long enough for the
 * worst case every time (a slow one).
 */

/** What a probe returns while the awaited thing has not happened yet. */
export type Pending = undefined | null | false;

export interface PollOptions {
  /**
   * The failure in words, for the error on timeout ("the relay did not start"); a function
   * is called then, so it can describe the state at that moment.
   */
  what: string | (() => string);
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between probes (default 50 ms). */
  intervalMs?: number;
}

/**
 * Calls `probe` until it returns something other than undefined, null or false (or, with
 * `until`, a value `until` accepts) and returns that value. A probe that throws ends the
 * wait with its error: one that should retry catches and returns what it caught, so the
 * timeout error can show it. On timeout, throws naming `what` and the probe's last value.
 */
export function eventually<T>(
  probe: () => T | Promise<T>,
  options: PollOptions & { until: (value: T) => boolean },
): Promise<T>;
export function eventually<T>(
  probe: () => T | Pending | Promise<T | Pending>,
  options: PollOptions,
): Promise<T>;
export async function eventually<T>(
  probe: () => T | Pending | Promise<T | Pending>,
  options: PollOptions & { until?: (value: T | Pending) => boolean },
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50 } = options;
  const ready = options.until ?? ((v) => v !== undefined && v !== null && v !== false);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ready(value)) return value as T;
    if (performance.now() >= deadline) {
      const what = typeof options.what === "function" ? options.what() : options.what;
      throw new Error(`${what} (waited ${timeoutMs} ms; last value: ${show(value)})`);
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, deadline - performance.now())));
  }
}

function show(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (value instanceof Error) text = `${value.name}: ${value.message}`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}
