/**
 * Waits for `p` to settle or for `ms` to pass, whichever comes first, and never rejects: the
 * bounded, best-effort wait of a stopping part (a last report, open responses, a log flush), so
 * that a peer that never answers cannot hold the stop up. `timers` lets a test use a fake clock.
 */
export async function settleWithin<T>(
  p: Promise<unknown>,
  ms: number,
  timers: { setTimeout(fn: () => void, ms: number): T; clearTimeout(timer: T): void } = {
    setTimeout: (fn, ms) => setTimeout(fn, ms) as T,
    clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
  },
): Promise<void> {
  let timer: T | undefined;
  const elapsed = new Promise<void>((resolve) => timer = timers.setTimeout(resolve, ms));
  try {
    await Promise.race([p.then(() => {}, () => {}), elapsed]);
  } finally {
    timers.clearTimeout(timer as T);
  }
}
