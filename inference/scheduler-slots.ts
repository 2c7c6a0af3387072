/**
 * The scheduler's slot table: the sequences running now, each holding one of the batch engine's
 * slots (its KV cache), at most `maxConcurrent` at once. Sequences come in from the front of the
 * wait queue while both the bound and the engine have room.
 *
 * With prompt reuse (prefix-cache.ts) a sequence that ended may leave its slot holding its cache
 * for its requester: the slot stays taken from the engine, outside the running ones, until a
 * request of the same requester reuses it or a sequence needs a slot and none is free (the least
 * recently cached one goes back to the engine).
 */
import type { BatchEngine, StepOutput } from "./batch.ts";
import { createPrefixCache, type PrefixMatch } from "./prefix-cache.ts";
import { RewindRefusedError } from "./swa-cache.ts";
import type { SamplerOptions } from "./sampler.ts";

/** A sequence's engine slot, -1 until it got one; its sampler, for an engine that samples. */
export interface Slotted {
  slot: number;
  samplerOptions?: SamplerOptions;
  /** Its requester and what the engine reads first: a cached prefix of that requester may serve. */
  prefix?: { owner: string; tokens: readonly number[] };
  /** Set on admission: leading tokens of `prefix.tokens` already in the slot's cache. */
  cached?: number;
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
  /**
   * Ends the sequence's hold on its slot. `keep`: its requester and the tokens it read and
   * picked, in order; with prompt reuse on, the slot's cache stays as that requester's prefix
   * (as far as the engine's position says it holds). Without, the slot goes back to the engine.
   */
  release(item: T, keep?: { owner: string; tokens: readonly number[] }): void;
}

export type SlotEngine =
  & Pick<BatchEngine<StepOutput>, "acquire" | "release" | "maxSlots">
  & Partial<Pick<BatchEngine<StepOutput>, "position" | "rewind">>;

export interface SchedulerSlotsOptions {
  /** Keep ended sequences' caches for their requesters (needs the engine's position and rewind). */
  reuse?: boolean;
}

export function createSchedulerSlots<T extends Slotted>(
  batch: SlotEngine,
  maxConcurrent = batch.maxSlots,
  options: SchedulerSlotsOptions = {},
): SchedulerSlots<T> {
  const bound = Math.min(maxConcurrent, batch.maxSlots);
  if (bound < 1) throw new Error(`scheduler: maxConcurrent must be ≥ 1`);
  const { position, rewind } = batch;
  const reuse = options.reuse === true && position !== undefined && rewind !== undefined;
  const running: T[] = [];
  const cache = createPrefixCache();

  function acquire(item: T): number | undefined {
    const options = item.samplerOptions;
    return batch.acquire(options && { sampler: options });
  }

  /** The matched slot, rewound to the shared length; a refused rewind empties it instead. */
  function reuseSlot(match: PrefixMatch): { slot: number; cached: number } {
    const { slot } = cache.take(match.entry.slot)!;
    try {
      rewind!(slot, match.reuse);
      return { slot, cached: match.reuse };
    } catch (e) {
      // A recurrent state cannot go back short of its end (recurrent-state.ts); a sliding
      // window's ring only as far as it holds (swa-cache.ts), so other partial rewinds may do.
      if (!(e instanceof RewindRefusedError)) cache.refusePartial();
      rewind!(slot, 0);
      return { slot, cached: 0 };
    }
  }

  /**
   * A slot for `item`: the cached prefix that gives it the most, when that uses at least half of
   * what the entry holds (else a free slot is better: the entry may serve its own conversation
   * again); a free slot; the partial match; or the least recently cached slot, emptied.
   */
  function place(item: T): { slot: number; cached: number } | undefined {
    const p = item.prefix;
    const match = reuse && p ? cache.best(p.owner, p.tokens) : undefined;
    if (match && 2 * match.reuse >= match.entry.tokens.length) return reuseSlot(match);
    const fresh = acquire(item);
    if (fresh !== undefined) return { slot: fresh, cached: 0 };
    if (match) return reuseSlot(match);
    const old = cache.oldest();
    if (!old) return undefined;
    cache.take(old.slot);
    batch.release(old.slot);
    const slot = acquire(item);
    return slot === undefined ? undefined : { slot, cached: 0 };
  }

  return {
    running,
    free: () => Math.max(0, bound - running.length),
    admit(line) {
      const admitted: T[] = [];
      while (line.length > 0 && running.length < bound) {
        const item = line.at(0)!;
        const placed = place(item);
        if (placed === undefined) break;
        line.shift();
        item.slot = placed.slot;
        item.cached = placed.cached;
        running.push(item);
        admitted.push(item);
      }
      return admitted;
    },
    release(item, keep) {
      running.splice(running.indexOf(item), 1);
      const held = reuse && keep ? position!(item.slot) : 0;
      if (keep && held > 0 && held <= keep.tokens.length) {
        cache.put(item.slot, keep.owner, keep.tokens.slice(0, held));
      } else batch.release(item.slot);
    },
  };
}
