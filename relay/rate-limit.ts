// A token bucket per connection and verb: a client may burst, then is held to a steady rate.
// Refusals carry NIP-01's `rate-limited:` prefix, which clients understand as "slow down".

export interface TokenBucket {
  /** Takes one token; false when the bucket is empty. */
  take(): boolean;
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
  return {
    take() {
      const t = now();
      tokens = Math.min(burst, tokens + Math.max(0, t - last) * ratePerSecond);
      last = t;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}
