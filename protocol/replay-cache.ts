/** Remembers NIP-98 event ids so that each is accepted once (SPEC §3: kept ≥ 120 s). */

export interface ReplayCache {
  /** True if `id` was already seen (or the cache is full); records it otherwise. */
  seen(id: string, now: number): boolean;
}

/**
 * A created_at window of ±60 s means an event is acceptable for at most 120 s, so a ttl of
 * 120 s from first sight covers its whole life. Memory is bounded by `maxEntries`; a full cache
 * answers "seen" (fails closed) rather than forgetting an id that could still be replayed.
 */
export function createReplayCache(ttlSeconds = 120, maxEntries = 100_000): ReplayCache {
  // Insertion order is expiry order as long as `now` does not go backwards, so pruning only
  // ever looks at the front of the map.
  const expiries = new Map<string, number>();
  const prune = (now: number) => {
    for (const [id, expiresAt] of expiries) {
      if (expiresAt > now) break;
      expiries.delete(id);
    }
  };
  return {
    seen(id, now) {
      prune(now);
      const expiresAt = expiries.get(id);
      if (expiresAt !== undefined && expiresAt > now) return true;
      if (expiries.size >= maxEntries) return true;
      expiries.set(id, now + ttlSeconds);
      return false;
    },
  };
}
