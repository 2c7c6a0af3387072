// NIP-40: an expired event is never served (the store's queries skip it), and this part deletes it
// from the file, once a minute, so the database does not keep growing with what nobody may read.
import type { Logger, Startable } from "../protocol/mod.ts";
import type { EventStore } from "./event-store.ts";
import { guardedInterval } from "./guarded-interval.ts";

export interface ExpiryPurgerComponents {
  store: Pick<EventStore, "deleteExpired">;
  /** UNIX seconds (fractions allowed). */
  now: () => number;
}

export interface ExpiryPurger extends Startable {
  /** One round now (the timer calls it; tests call it directly); returns how many went. */
  purge(): number;
  start(): void;
  stop(): void;
}

export interface ExpiryPurgerInit {
  /** Between two rounds (default a minute). */
  intervalMs?: number;
  log: Logger;
}

export function createExpiryPurger(
  init: ExpiryPurgerInit,
  c: ExpiryPurgerComponents,
): ExpiryPurger {
  const intervalMs = init.intervalMs ?? 60_000;
  const purge = () => c.store.deleteExpired(Math.floor(c.now()));
  let stopTimer: (() => void) | undefined;
  return {
    name: "expired event purger",
    purge,
    start() {
      stopTimer = guardedInterval(intervalMs, "purging expired events", purge, init.log);
    },
    stop() {
      stopTimer?.();
      stopTimer = undefined;
    },
  };
}
