/**
 * Sliding-window layers' caches on the GPU as rings (inference/swa-cache.ts): each holds the
 * window and the most rows a step adds (the planner's SCRATCH_ROWS, or the step's scratch where
 * wider), position p at row p % rows; the other layers hold the whole context.
 */
import type { ModelConfig } from "../model-config.ts";
import { isLocalLayer } from "../gemma3.ts";
import { SCRATCH_ROWS } from "../model-shape.ts";
import { type RingTrack, ringTrack, slidingCacheSize } from "../swa-cache.ts";

/**
 * Per layer of [layerStart, layerStart + layers): the rows of its ring, or 0 where the layer
 * keeps every position (a global layer, or a ring that would hold the whole context anyway).
 */
export function ringRowsOf(
  config: ModelConfig,
  layerStart: number,
  layers: number,
  ctxSize: number,
  stepRows: number,
): number[] {
  const size = slidingCacheSize(config, ctxSize, Math.max(SCRATCH_ROWS, stepRows));
  return Array.from(
    { length: layers },
    (_, li) => isLocalLayer(config, layerStart + li) && size < ctxSize ? size : 0,
  );
}

/** A new sequence's ring bookkeeping over layers whose rings are `rings` (ringRowsOf). */
export function ringTrackOf(config: ModelConfig, rings: readonly number[]): RingTrack {
  const size = Math.max(0, ...rings);
  return ringTrack(size > 0 ? config.slidingWindow! : 0, size);
}
