/**
 * The scheduler's wait queue: requests waiting for a slot, first come first served. Bounded, so a
 * node past its line says "busy" at once, before the request took anything; and a request whose
 * signal aborts while it waits leaves the line at once, without waiting for a step.
 */

/**
 * Requests waiting for a slot, by default. A longer line only makes each of them wait longer
 * (and hold its stream, prompt and sampler meanwhile); past it a request gets a clear "busy"
 * at once, which a client can take to another node.
 */
export const MAX_WAITING = 256;

/** The wait queue is full: refused before the request took anything. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
  readonly code = "busy";
  constructor(readonly waiting: number) {
    super(`this node is busy: ${waiting} requests are already waiting for a slot; try again later`);
  }
}

export interface WaitQueueInit<T> {
  /** Items that may wait; one more is refused with QueueFullError. */
  maxWaiting: number;
  /** An item whose signal aborted while it waited, already out of the line. */
  onAbort(item: T): void;
}

export interface WaitQueue<T> {
  readonly length: number;
  /**
   * Makes an item and puts it at the back of the line, or throws QueueFullError before making
   * anything. `freeSlots` slots that will take from the line count as room beside the bound, so
   * a node with room never says busy. While the item waits, an abort of `signal` takes it out of
   * the line and hands it to onAbort (at once when the signal is aborted already).
   */
  join(make: () => T, freeSlots: number, signal?: AbortSignal): T;
  /** The item at `index` in line (0: the next to go), still waiting; undefined past the end. */
  at(index: number): T | undefined;
  /** Takes the first in line (a slot came free); undefined when none waits. */
  shift(): T | undefined;
  /** Takes `item` out of the line; false when it was not waiting. */
  leave(item: T): boolean;
}

export function createWaitQueue<T>(init: WaitQueueInit<T>): WaitQueue<T> {
  if (!(init.maxWaiting >= 0)) throw new Error(`scheduler: maxWaiting must be ≥ 0`);
  const line: T[] = [];
  const unwatch = new Map<T, () => void>();

  function leave(item: T): boolean {
    const i = line.indexOf(item);
    if (i < 0) return false;
    line.splice(i, 1);
    unwatch.get(item)?.();
    unwatch.delete(item);
    return true;
  }

  return {
    get length() {
      return line.length;
    },
    join(make, freeSlots, signal) {
      if (line.length >= init.maxWaiting + Math.max(0, freeSlots)) {
        throw new QueueFullError(line.length);
      }
      const item = make();
      line.push(item);
      if (signal) {
        const onAbort = () => {
          if (leave(item)) init.onAbort(item);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        unwatch.set(item, () => signal.removeEventListener("abort", onAbort));
        if (signal.aborted) onAbort();
      }
      return item;
    },
    at: (index) => line.at(index),
    shift() {
      if (line.length === 0) return undefined;
      const item = line[0];
      leave(item);
      return item;
    },
    leave,
  };
}
