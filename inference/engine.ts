/**
 * What the rest of Grove sees of a loaded model, whichever backend runs it.
 */
import type { GgufValue } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";
import type { Pooling } from "./embed.ts";

export interface EngineInfo {
  backend: "cpu" | "webgpu";
  adapter: string; // what runs the arithmetic, in words
  path: string;
  weightBytes: number;
  loadMs: number;
}

/** One sequence's place in the model: its own KV cache. */
export interface Session {
  readonly position: number;
  /** Feeds `tokens` at the current position; returns the logits after the last one. */
  evaluate(tokens: readonly number[]): Float32Array;
  /**
   * Device engines (WebGPU) cannot block on a readback, so they answer here instead of
   * `evaluate`: `evaluateAsync` with the logits, `evaluateGreedy` with only their argmax,
   * picked on the device (4 bytes back; generate() uses it for plain greedy decoding).
   */
  evaluateAsync?(tokens: readonly number[]): Promise<Float32Array>;
  evaluateGreedy?(tokens: readonly number[]): Promise<number>;
  /**
   * Greedy decoding kept on the device: `tokens`, then each pick fed back as the next token,
   * up to `max` picks, with steps queued ahead of the readbacks. The picks equal evaluateGreedy
   * called in a loop; stopping the iteration early rewinds past steps run ahead.
   */
  evaluateGreedyStream?(tokens: readonly number[], max: number): AsyncGenerator<number, void>;
  /** Drops the cache from `position` on, so a shared prefix can be kept. */
  rewind(position: number): void;
}

/** A contiguous range of layers: hidden states in, hidden states out (pipeline stages). */
export interface StageSession {
  readonly position: number;
  /** Runs the range on `n` new positions of `hidden` (n × dim) in place. */
  forward(hidden: Float32Array, n: number): void;
  rewind(position: number): void;
}

export interface Engine {
  info: EngineInfo;
  config: ModelConfig;
  metadata: Record<string, GgufValue>;
  tokenizer: Tokenizer;
  ctxSize: number;
  createSession(): Session;
  /**
   * The embedding of `tokens` (embed.ts): the output norm's rows pooled, L2-normalised; a
   * throwaway cache of its own, apart from the sessions. An engine without it serves none.
   */
  embed?(tokens: readonly number[], pooling: Pooling): Promise<Float32Array>;
}

/** The layers [layerStart, layerEnd) of a model, loaded alone: one pipeline stage. */
export interface Stage {
  config: ModelConfig;
  layerStart: number;
  layerEnd: number;
  ctxSize: number;
  /** Hidden states (n × dim) of the tokens; only the first stage holds the embedding. */
  embed(tokens: readonly number[]): Float32Array;
  /** Logits of row `row` of `hidden`; only the last stage holds the head. */
  logits(hidden: Float32Array, row: number): Float32Array;
  createSession(): StageSession;
}
