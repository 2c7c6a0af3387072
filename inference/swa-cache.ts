/**
 * Sliding-window layers' KV caches as rings, as llama.cpp keeps a second, smaller cache for them
 * (src/llama-kv-cache-iswa.cpp): a local layer's query sees only the last `window` positions, so
 * its cache holds position p at row p mod capacity. A step writes all its rows before any of them
 * attends, so the capacity is the window plus the most rows one step adds: the step's first row
 * still finds its whole window when the last row has been written.
 *
 * A ring cannot go back further than it holds: a rewind to p needs the window before p
 * (rewindError says when it is gone); a rewind to 0 always works.
 */
import type { ModelConfig } from "./model-config.ts";
import { isLocalLayer } from "./gemma3.ts";

/** The window of the model's sliding-window layers, 0 when it has none. */
export function slidingWindowOf(config: ModelConfig): number {
  for (let l = 0; l < config.layers; l++) if (isLocalLayer(config, l)) return config.slidingWindow!;
  return 0;
}

/**
 * Positions a sliding-window layer's cache holds: the window and the most rows one step adds
 * (`stepRows`), never more than the context; the context itself for a model without a window.
 */
export function slidingCacheSize(config: ModelConfig, ctxSize: number, stepRows: number): number {
  const window = slidingWindowOf(config);
  return window > 0 ? Math.min(ctxSize, window + stepRows) : ctxSize;
}

/** What a sequence's rings hold: enough of RunState to decide a rewind. */
export interface RingHold {
  position: number;
  /** The local layers' window; 0 when the state's layers keep every position. */
  window: number;
  /** Positions before this one are overwritten in the rings. */
  ringFrom: number;
}

/** Refused rewinds are this error, so a caller can start the sequence again from 0 instead. */
export class RewindRefusedError extends Error {
  override name = "RewindRefusedError";
}

/**
 * Why the sequence cannot be rewound to `position`, or undefined when it can: the position
 * must be one it holds (0 .. position), and a row there must still find its window in the rings.
 */
export function rewindError(hold: RingHold, position: number): RewindRefusedError | undefined {
  if (!Number.isInteger(position) || position < 0 || position > hold.position) {
    return new RewindRefusedError(
      `cannot rewind to ${position}: the cache holds ${hold.position} positions`,
    );
  }
  if (position === 0 || position === hold.position || hold.window === 0) return undefined;
  const needed = Math.max(0, position - hold.window + 1);
  if (needed >= hold.ringFrom) return undefined;
  return new RewindRefusedError(
    `cannot rewind to ${position}: its sliding-window layers hold only positions ` +
      `${hold.ringFrom}..${hold.position - 1} and position ${position} needs ` +
      `${needed}..${position - 1}; rewind to 0 and run the sequence again`,
  );
}

/** Whether the sequence can be rewound to `position` (rewindError gives the reason when not). */
export function canRewindTo(hold: RingHold, position: number): boolean {
  return rewindError(hold, position) === undefined;
}

/** A sequence's rings where its cache lives elsewhere (the GPU engine's buffers). */
export interface RingTrack {
  /** The ring layers' window; 0 when none of the layers is one. */
  window: number;
  /** Positions each ring holds. */
  ringSize: number;
  /** Positions before this one are overwritten in the rings. */
  ringFrom: number;
}

/** The rings of a new sequence; a window of 0 (no ring layers) tracks nothing. */
export function ringTrack(window: number, ringSize: number): RingTrack {
  return { window, ringSize, ringFrom: 0 };
}

/** Notes that positions up to `end` (exclusive) are being written: the rings lose what they overwrite. */
export function ringWrote(track: RingTrack, end: number): void {
  if (track.window > 0) track.ringFrom = Math.max(track.ringFrom, end - track.ringSize);
}

/**
 * Checks a rewind from `position` to `to` (throws RewindRefusedError when `to` is not held or its
 * window is gone) and notes it: back at 0, the rings start over.
 */
export function ringRewind(track: RingTrack, position: number, to: number): void {
  const refused = rewindError({ position, window: track.window, ringFrom: track.ringFrom }, to);
  if (refused) throw refused;
  if (to === 0) track.ringFrom = 0;
}
