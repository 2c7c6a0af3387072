// A relay chore on a timer. A chore that throws is logged and runs again at its next tick: one bad
// round (a busy database file) must not stop the purge or the member poll for good, nor crash the
// relay from a timer callback.
import type { Logger } from "../protocol/mod.ts";

/** Runs `fn` every `ms`; returns what stops it. `what` completes "the relay failed …". */
export function guardedInterval(ms: number, what: string, fn: () => void, log: Logger): () => void {
  const timer = setInterval(() => {
    try {
      fn();
    } catch (err) {
      log.error(`the relay failed ${what}`, { error: String(err) });
    }
  }, ms);
  return () => clearInterval(timer);
}
