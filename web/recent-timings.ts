/**
 * The timings of the last requests this node answered on /v1, any API (docs/http-api.md,
 * `GET /api/timings`): the dashboard's tokens/s and time-to-first-token charts. A ring buffer
 * fed from the same records the metrics get, so every route that counts a request counts here.
 */
import type { InferenceRecord, Metrics } from "./metrics.ts";

export const RECENT_TIMINGS = 120;

export interface RecentTiming {
  /** When the request ended, ms since the epoch. */
  at: number;
  modelId: string | null;
  promptTokens: number;
  /** Of promptTokens, those taken from the serving node's cache (prompt reuse), not prefilled. */
  cachedTokens: number;
  completionTokens: number;
  ttftMs: number;
  /** Generation speed after the first token; null with fewer than two tokens. */
  tokensPerSecond: number | null;
}

export interface RecentTimings {
  add(record: InferenceRecord, at?: number): void;
  /** Oldest first. */
  recent(): RecentTiming[];
}

export function createRecentTimings(limit = RECENT_TIMINGS): RecentTimings {
  const ring: RecentTiming[] = [];
  let next = 0; // where the next entry goes once the ring is full
  return {
    add(r, at = Date.now()) {
      // A failed request answered nothing; one stopped before its first token has no timing.
      if (r.outcome === "error" || r.ttftSeconds === undefined) return;
      const decodeSeconds = r.durationSeconds - r.ttftSeconds;
      const entry: RecentTiming = {
        at,
        modelId: r.modelId ?? null,
        promptTokens: r.promptTokens,
        cachedTokens: r.cachedTokens ?? 0,
        completionTokens: r.completionTokens,
        ttftMs: Math.round(r.ttftSeconds * 1000 * 10) / 10,
        tokensPerSecond: r.completionTokens >= 2 && decodeSeconds > 0
          ? Math.round((r.completionTokens - 1) / decodeSeconds * 10) / 10
          : null,
      };
      if (ring.length < limit) ring.push(entry);
      else {
        ring[next] = entry;
        next = (next + 1) % limit;
      }
    },
    recent: () => [...ring.slice(next), ...ring.slice(0, next)],
  };
}

/** `metrics` that also hands each inference record to `timings`. */
export function withRecentTimings(metrics: Metrics, timings: RecentTimings): Metrics {
  return {
    ...metrics,
    inference(record) {
      metrics.inference(record);
      timings.add(record);
    },
  };
}
