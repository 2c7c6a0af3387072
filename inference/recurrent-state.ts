/**
 * A sequence's recurrent state in a hybrid model's linear-attention layers (qwen35moe), kept with
 * its RunState beside the full-attention layers' KV cache, as llama.cpp's
 * llama_memory_recurrent keeps one per sequence: per linear layer the conv's last inputs and the
 * delta net's state matrices, both in ggml's layouts (src/models/delta-net-base.cpp).
 *
 * Unlike a KV cache, the state holds no history: it can be reset (position 0), but never moved
 * back to an earlier position. Grove's only callers that rewind to anything but 0 or the current
 * position are tests and prefix reuse, so a rewind a recurrent state cannot honour is refused
 * with an error; the caller runs the sequence again from the start (as failover replay does).
 */
import type { ModelConfig } from "./model-config.ts";

export interface RecurrentLayerState {
  /** (convKernel − 1) · convDim: channel c's last inputs at c·(convKernel − 1), oldest first. */
  conv: Float32Array;
  /** vHeads · headDim²: head h's matrix M at h·headDim², M[j·headDim + i] = S[i][j]. */
  delta: Float32Array;
}

export interface RecurrentState {
  /** Per layer of the engine's range (index = layer − layerStart); undefined for attention layers. */
  layers: (RecurrentLayerState | undefined)[];
}

/** The zero state of the linear layers in [layerStart, layerEnd), or undefined when there are none. */
export function createRecurrentState(
  config: ModelConfig,
  layerStart: number,
  layerEnd: number,
): RecurrentState | undefined {
  const r = config.recurrent;
  if (!r) return undefined;
  const layers: (RecurrentLayerState | undefined)[] = [];
  for (let l = layerStart; l < layerEnd; l++) {
    layers.push(
      r.recurrentLayers[l]
        ? {
          conv: new Float32Array((r.convKernel - 1) * r.convDim),
          delta: new Float32Array(r.vHeads * r.headDim * r.headDim),
        }
        : undefined,
    );
  }
  return { layers };
}

/** Whether global layer `layer` is a linear-attention layer. */
export function isRecurrentLayer(config: ModelConfig, layer: number): boolean {
  return config.recurrent?.recurrentLayers[layer] ?? false;
}

/** Bytes of one sequence's recurrent state over the layers [layerStart, layerEnd). */
export function recurrentStateBytes(config: ModelConfig, layerStart = 0, layerEnd = config.layers) {
  const r = config.recurrent;
  if (!r) return 0;
  let linear = 0;
  for (let l = layerStart; l < layerEnd; l++) if (r.recurrentLayers[l]) linear++;
  return linear * 4 * ((r.convKernel - 1) * r.convDim + r.vHeads * r.headDim * r.headDim);
}

/**
 * Moves a sequence (its `position` and, where the model has one, its recurrent state) back to
 * `position`: 0 empties it, the current position keeps it; any other position is refused for
 * a recurrent model, since its state cannot be unwound (the caller re-runs from the start).
 */
export function rewindSequence(
  state: { position: number; recurrent?: RecurrentState },
  position: number,
): void {
  if (!Number.isInteger(position) || position < 0 || position > state.position) {
    throw new Error(`cannot rewind to ${position}: the cache holds ${state.position} positions`);
  }
  if (state.recurrent && position !== state.position) {
    if (position !== 0) {
      throw new Error(
        `cannot rewind to ${position}: this model's linear-attention layers keep a recurrent ` +
          `state of all ${state.position} positions, which cannot be moved back; ` +
          `rewind to 0 and run the sequence again`,
      );
    }
    for (const layer of state.recurrent.layers) {
      layer?.conv.fill(0);
      layer?.delta.fill(0);
    }
  }
  state.position = position;
}
