/**
 * One pipeline stage of a split model (docs/protocol.md, stages): the layers [layerStart,
 * layerEnd) loaded alone, batched over slots like BatchEngine (batch.ts) so several sessions'
 * rows go through in one step. Stage 0 also embeds token ids; the last stage also turns hidden
 * states into logits. Only this range's tensors are read from the GGUF.
 */
import type { GgufValue } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";

export interface StageBatchInfo {
  backend: "cpu" | "webgpu";
  adapter: string; // what runs the arithmetic, in words
  /** Bytes of weights this stage holds. */
  weightBytes: number;
  /** Bytes read from the GGUF file to load this stage (header and tensors). */
  bytesRead: number;
  loadMs: number;
}

/** A slot's new rows in a forward step: `count` consecutive positions of its sequence. */
export interface StageRows {
  slot: number;
  count: number;
}

export interface StageBatch {
  readonly config: ModelConfig;
  readonly metadata: Record<string, GgufValue>;
  /** The model's tokenizer (built on first use: only a coordinator needs it). */
  readonly tokenizer: Tokenizer;
  readonly layerStart: number;
  readonly layerEnd: number;
  readonly ctxSize: number;
  readonly maxSlots: number;
  /** Most rows (all slots together) one forward takes. */
  readonly maxRows: number;
  readonly info: StageBatchInfo;
  /** A free slot (its cache empty), or undefined when all are taken. */
  acquire(): number | undefined;
  /** Gives the slot back; its cache is dropped. */
  release(slot: number): void;
  position(slot: number): number;
  rewind(slot: number, position: number): void;
  /** Stage 0 only (else throws): hidden states (n × dim) of the tokens. */
  embed(tokens: readonly number[]): Promise<Float32Array>;
  /**
   * Runs the layers on the stacked rows of `rows` (hidden: Σcount × dim, in row order) in
   * place; each slot's cache grows by its count.
   */
  forward(rows: readonly StageRows[], hidden: Float32Array): Promise<void>;
  /** Last stage only (else throws): logits of the given row indices of `hidden`. */
  logits(hidden: Float32Array, rows: readonly number[]): Promise<Float32Array[]>;
  /** Frees the weights (GPU buffers). */
  close(): void;
}

export interface StageBatchInit {
  path: string;
  layerStart: number;
  layerEnd: number;
  ctxSize?: number;
  maxSlots?: number; // default 8
  maxRows?: number; // default 512
  gpu?: boolean; // WebGPU instead of the CPU kernels
  onProgress?: (loaded: number, total: number) => void;
}
