/**
 * The time and timers a mesh part runs on. Parts take one (default: the system's) so their tests
 * can move time themselves (tests/support/fake-clock.ts) instead of waiting for it.
 */
/** A timer's handle, which only the clock that made it reads. */
export type Timer = unknown;
type SystemTimer = ReturnType<typeof setTimeout>;

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
  setInterval(fn: () => void, ms: number): Timer;
  clearInterval(timer: Timer): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as SystemTimer),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (timer) => clearInterval(timer as SystemTimer),
};
