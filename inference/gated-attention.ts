/**
 * qwen35moe's full-attention layers gate their output (src/models/qwen35moe.cpp
 * build_layer_attn): W_q gives each head's query and gate side by side, [q_h, gate_h], and the
 * attention output is multiplied by sigmoid(gate) before W_o. attention.ts calls these two where
 * the model has the gate; the rest of the layer is the usual attention.
 */
import type { ModelConfig } from "./model-config.ts";
import type { Matrix } from "./weights.ts";
import { matMul } from "./primitives.ts";

export interface GatedQueryScratch {
  qGate: Float32Array; // (n, heads · 2 · headDim) W_q's output
  gate: Float32Array; // (n, heads · headDim)
}

export function gatedQueryScratch(config: ModelConfig, n: number): GatedQueryScratch {
  const width = config.heads * config.headDim;
  return { qGate: new Float32Array(n * 2 * width), gate: new Float32Array(n * width) };
}

/** W_q · x for `n` rows, split per head into the queries (`q`) and the output gates. */
export function projectGatedQuery(
  config: ModelConfig,
  wq: Matrix,
  xb: Float32Array,
  n: number,
  q: Float32Array,
  s: GatedQueryScratch,
): void {
  const { heads, headDim } = config;
  matMul(wq, xb, n, s.qGate);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < heads; h++) {
      const from = (t * heads + h) * 2 * headDim, to = (t * heads + h) * headDim;
      q.set(s.qGate.subarray(from, from + headDim), to);
      s.gate.set(s.qGate.subarray(from + headDim, from + 2 * headDim), to);
    }
  }
}

/** att ← att · sigmoid(gate) over `count` values (heads · valueDim per row; valueDim = headDim). */
export function gateOutput(att: Float32Array, gate: Float32Array, count: number): void {
  for (let i = 0; i < count; i++) att[i] *= 1 / (1 + Math.exp(-gate[i]));
}
