/**
 * A clock for tests (the shape of mesh/clock.ts `Clock`): time moves only when the test moves it.
 * `advance` runs each timer due on the way at its own time, in order, and lets the promise work
 * that timer started settle before the next one, so a test reads like a timeline: "49 ms after
 * the change nothing was sent, at 50 ms one report was".
 */
export interface FakeClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(timer: unknown): void;
  setInterval(fn: () => void, ms: number): number;
  clearInterval(timer: unknown): void;
  /** Moves time on by `ms`, running the timers due on the way. */
  advance(ms: number): Promise<void>;
  /** Lets pending promise work settle, without moving time. */
  settle(): Promise<void>;
  /** How many timers are waiting. */
  pending(): number;
}

interface Pending {
  at: number;
  fn: () => void;
  /** An interval's period; a timeout runs once. */
  every?: number;
}

export function fakeClock(start = 0): FakeClock {
  let now = start;
  let nextId = 1;
  const timers = new Map<number, Pending>();
  const add = (fn: () => void, ms: number, every?: number) => {
    const id = nextId++;
    timers.set(id, { at: now + Math.max(0, ms), fn, every });
    return id;
  };
  const clear = (id: unknown) => void timers.delete(id as number);
  // One turn of the real event loop: every promise reaction queued so far runs before it ends.
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

  function nextDue(until: number): [number, Pending] | undefined {
    let next: [number, Pending] | undefined;
    for (const entry of timers) {
      if (entry[1].at > until) continue;
      if (next === undefined || entry[1].at < next[1].at) next = entry;
    }
    return next;
  }

  return {
    now: () => now,
    setTimeout: (fn, ms) => add(fn, ms),
    clearTimeout: clear,
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    clearInterval: clear,
    settle,
    pending: () => timers.size,
    async advance(ms) {
      const end = now + ms;
      await settle();
      for (let due = nextDue(end); due !== undefined; due = nextDue(end)) {
        const [id, timer] = due;
        now = timer.at;
        if (timer.every === undefined) timers.delete(id);
        else timer.at += timer.every;
        timer.fn();
        await settle();
      }
      now = end;
    },
  };
}
