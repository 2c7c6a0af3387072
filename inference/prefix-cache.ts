/**
 * Prompt reuse: engine slots whose sequence ended keep their cache (the tokens it read, KV and
 * all) as a cached prefix of their requester. A later request of the same requester whose prompt
 * starts with some of those tokens takes that slot, rewound to the shared length, and prefills
 * only the rest: an agent's next turn reads only its new tokens.
 *
 * Keyed by requester: a prefix cached for one member is never offered to another, so a member's
 * time to first token says nothing about what others asked. Bounded by the engine's slots (the
 * KV memory the node planned): the least recently used entry gives its slot up when one is needed.
 */

export interface CachedPrefix {
  slot: number;
  /** Whose sequence left it (ScheduleOptions.cacheKey). */
  owner: string;
  /** What the slot's cache holds, position by position. */
  tokens: readonly number[];
  /** When it was cached (a counter): the lowest goes first. */
  usedAt: number;
}

/** A cached prefix that fits a prompt, and how many of the prompt's tokens it gives. */
export interface PrefixMatch {
  entry: CachedPrefix;
  reuse: number;
}

/** How many leading tokens `a` and `b` share. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Tokens of `prompt` that `cached` can give: the shared prefix, short of the prompt's last token
 * (the step that reads it gives the logits of the first pick). Without partial rewinds (a model
 * with a recurrent state: qwen35moe) only a cache that is whole a prefix of the prompt counts.
 */
export function reusableTokens(
  cached: readonly number[],
  prompt: readonly number[],
  partialRewind: boolean,
): number {
  const n = Math.min(commonPrefix(cached, prompt), prompt.length - 1);
  if (n <= 0) return 0;
  return partialRewind || n === cached.length ? n : 0;
}

export interface PrefixCache {
  readonly size: number;
  /** The owner's entry that gives the most of `prompt`, if any gives a token. */
  best(owner: string, prompt: readonly number[]): PrefixMatch | undefined;
  /** Caches what `slot` holds for `owner`. */
  put(slot: number, owner: string, tokens: readonly number[]): void;
  /** Takes the entry of `slot` out (its slot runs again, or goes back to the engine). */
  take(slot: number): CachedPrefix | undefined;
  /** The least recently cached entry, left in place. */
  oldest(): CachedPrefix | undefined;
  /** The engine refused a rewind short of a cache's end: from now on only whole caches match. */
  refusePartial(): void;
}

export function createPrefixCache(): PrefixCache {
  const entries = new Map<number, CachedPrefix>();
  let clock = 0;
  let partialRewind = true;
  return {
    get size() {
      return entries.size;
    },
    best(owner, prompt) {
      let found: PrefixMatch | undefined;
      for (const entry of entries.values()) {
        if (entry.owner !== owner) continue;
        const reuse = reusableTokens(entry.tokens, prompt, partialRewind);
        if (reuse > 0 && reuse > (found?.reuse ?? 0)) found = { entry, reuse };
      }
      return found;
    },
    put(slot, owner, tokens) {
      entries.set(slot, { slot, owner, tokens, usedAt: clock++ });
    },
    take(slot) {
      const entry = entries.get(slot);
      entries.delete(slot);
      return entry;
    },
    oldest() {
      let old: CachedPrefix | undefined;
      for (const e of entries.values()) if (!old || e.usedAt < old.usedAt) old = e;
      return old;
    },
    refusePartial() {
      partialRewind = false;
    },
  };
}
