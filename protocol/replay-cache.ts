/**
 * Remembers NIP-98 event ids so that each is accepted once (docs/protocol.md#nip-98: 120 s).
 *
 * Checking and recording are separate steps: a server looks an id up before it acts, and
 * records it only once the request has passed every other check, membership included. So a
 * stranger's signed requests never take room, and whoever fills the cache must be a member,
 * whose rate the server bounds per key. A full cache never answers "already used": it records
 * nothing and says so, and the caller refuses with "busy" instead. Ids are never evicted
 * before their time: an evicted id could be replayed while its event is still fresh.
 */

export interface ReplayCache {
  /** True while `id` was recorded less than the ttl ago. */
  has(id: string, now: number): boolean;
  /** Records `id` for the ttl; false (and nothing recorded) when the cache is full. */
  record(id: string, now: number): boolean;
  /** Ids held now. */
  size(now: number): number;
}

/** Holds 100,000 ids: ~700 members each at the relay's per-key limit (60/min, burst 20) for 120 s. */
const REPLAY_CACHE_ENTRIES = 100_000;

/**
 * A created_at window of ±60 s means an event is acceptable for at most 120 s, so a ttl of
 * 120 s from first sight covers its whole life.
 */
export function createReplayCache(
  ttlSeconds = 120,
  maxEntries = REPLAY_CACHE_ENTRIES,
): ReplayCache {
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
    has(id, now) {
      const expiresAt = expiries.get(id);
      return expiresAt !== undefined && expiresAt > now;
    },
    record(id, now) {
      prune(now);
      if (expiries.has(id)) return true;
      if (expiries.size >= maxEntries) return false;
      expiries.set(id, now + ttlSeconds);
      return true;
    },
    size(now) {
      prune(now);
      return expiries.size;
    },
  };
}
