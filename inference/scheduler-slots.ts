/**
 * The scheduler's slot table: the sequences running now, each holding one of the batch engine's
 * slots (its KV cache), at most `maxConcurrent` at once. Sequences come in from the front of the
 * wait queue while both the bound and the engine have room.
 */
import type { BatchEngine, StepOutput } from "./batch.ts";
import type { SamplerOptions } from "./sampler.ts";

/** A sequence's engine slot, -1 until it got one; its sampler, for an engine that samples. */
export interface Slotted {
  slot: number;
  samplerOptions?: SamplerOptions;
}

/** The wait queue's face the table takes from (an array will do). */
export interface WaitLine<T> {
  readonly length: number;
  at(index: number): T | undefined;
  shift(): T | undefined;
}

export interface SchedulerSlots<T extends Slotted> {
  /** Running sequences, in the order they got their slot. */
  readonly running: readonly T[];
  /** How many more may run by the concurrency bound (the engine may have fewer free). */
  free(): number;
  /** Gives the first in `line` a slot while the bound and the engine allow; returns them. */
  admit(line: WaitLine<T>): T[];
  /** Gives the sequence's slot back to the engine (its cache is dropped). */
  release(item: T): void;
}

export function createSchedulerSlots<T extends Slotted>(
  batch: Pick<BatchEngine<StepOutput>, "acquire" | "release" | "maxSlots">,
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
        const item = line.at(0)!;
        const options = item.samplerOptions;
        const slot = batch.acquire(options && { sampler: options });
        if (slot === undefined) break;
        line.shift();
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
