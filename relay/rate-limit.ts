// Token buckets: a client may burst, then is held to a steady rate. One per connection and verb
// (refusals carry NIP-01's `rate-limited:` prefix, which clients understand as "slow down"), and
// keyed sets of them for what outlives a connection: a stranger's IP, a member's key.

export interface TokenBucket {
  /** Takes one token; false when the bucket is empty. */
  take(): boolean;
  /** Gives back one token taken for something that turned out not to count. */
  refund(): void;
  /** Seconds until a token is there (0 when one is). */
  retryAfter(): number;
  /** True when the bucket is full again, so forgetting it changes nothing. */
  idle(): boolean;
}

/**
 * `perMinute` tokens refill evenly; the bucket holds `burst` (default: a tenth of a minute's
 * worth, at least 5). `now` is in seconds and may be fractional.
 */
export function createTokenBucket(
  perMinute: number,
  now: () => number,
  burst = Math.max(5, Math.ceil(perMinute / 10)),
): TokenBucket {
  const ratePerSecond = perMinute / 60;
  let tokens = burst;
  let last = now();
  const refill = () => {
    const t = now();
    tokens = Math.min(burst, tokens + Math.max(0, t - last) * ratePerSecond);
    last = t;
  };
  return {
    take() {
      refill();
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
    refund() {
      tokens = Math.min(burst, tokens + 1);
    },
    retryAfter() {
      refill();
      return tokens >= 1 ? 0 : (1 - tokens) / ratePerSecond;
    },
    idle() {
      refill();
      return tokens >= burst;
    },
  };
}

export interface KeyedBuckets {
  /** The bucket of `key`, made full on first use. */
  of(key: string): TokenBucket;
  /** Keys held (full buckets are dropped as new keys come). */
  size(): number;
}

/**
 * One bucket per key, for keys that come and go (IPs, pubkeys). Memory stays bounded: a full
 * bucket holds no state worth keeping and is dropped when the map grows; when `maxKeys` keys
 * are all busy, new keys share one overflow bucket (so a flood of addresses is still slowed,
 * all together, and the map never grows past `maxKeys`).
 */
export function createKeyedBuckets(
  perMinute: number,
  now: () => number,
  burst?: number,
  maxKeys = 65_536,
): KeyedBuckets {
  const buckets = new Map<string, TokenBucket>();
  let overflow: TokenBucket | undefined;
  let sweepAt = 1024;
  const sweep = () => {
    for (const [key, bucket] of buckets) if (bucket.idle()) buckets.delete(key);
    sweepAt = Math.max(1024, buckets.size * 2);
  };
  return {
    of(key) {
      let bucket = buckets.get(key);
      if (bucket) return bucket;
      if (buckets.size >= sweepAt || buckets.size >= maxKeys) sweep();
      if (buckets.size >= maxKeys) return overflow ??= createTokenBucket(perMinute, now, burst);
      bucket = createTokenBucket(perMinute, now, burst);
      buckets.set(key, bucket);
      return bucket;
    },
    size: () => buckets.size,
  };
}
