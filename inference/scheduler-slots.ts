/**
 * The scheduler's slot table: the sequences running now, each holding one of the batch engine's
 * slots (its KV cache), at most `maxConcurrent` at once. Sequences come in from the front of the
 * wait queue while both the bound and the engine have room.
 */
import type { BatchEngine } from "./batch.ts";

/** A sequence's engine slot, -1 until it got one. */
export interface Slotted {
  slot: number;
}

export interface SchedulerSlots<T extends Slotted> {
  /** Running sequences, in the order they got their slot. */
  readonly running: readonly T[];
  /** How many more may run by the concurrency bound (the engine may have fewer free). */
  free(): number;
  /** Gives the first in `line` a slot while the bound and the engine allow; returns them. */
  admit(line: { readonly length: number; shift(): T | undefined }): T[];
  /** Gives the sequence's slot back to the engine (its cache is dropped). */
  release(item: T): void;
}

export function createSchedulerSlots<T extends Slotted>(
  batch: Pick<BatchEngine, "acquire" | "release" | "maxSlots">,
  maxConcurrent = batch.maxSlots,
): SchedulerSlots<T> {
  const bound = Math.min(maxConcurrent, batch.maxSlots);
  if (bound < 1) throw new Error(`scheduler: maxConcurrent must be ≥ 1`);
  const running: T[] = [];
  return {
    running,
    free: () => Math.max(0, bound - running.length),
    admit(line) {
      const admitted: T[] = [];
      while (line.length > 0 && running.length < bound) {
        const slot = batch.acquire();
        if (slot === undefined) break;
        const item = line.shift()!;
        item.slot = slot;
        running.push(item);
        admitted.push(item);
      }
      return admitted;
    },
    release(item) {
      batch.release(item.slot);
      running.splice(running.indexOf(item), 1);
    },
  };
}
