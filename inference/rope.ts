/** Rotary position embedding as ggml computes it, on the CPU. */
import type { ModelConfig } from "./model-config.ts";

/**
 * Rotates the first `ropeDim` values of each head by position-dependent
 * angles: adjacent pairs (ggml "normal", llama) or halves (NeoX, qwen).
 */
export function rope(
  v: Float32Array,
  offset: number,
  heads: number,
  headDim: number,
  pos: number,
  config: ModelConfig,
  freqFactors?: Float32Array,
): void {
  const { ropeDim, ropeBase, ropeStyle } = config;
  const p = pos / config.ropeScale;
  const half = ropeDim / 2;
  for (let i = 0; i < half; i++) {
    let theta = p * Math.pow(ropeBase, (-2 * i) / ropeDim);
    if (freqFactors) theta /= freqFactors[i];
    const cos = Math.cos(theta), sin = Math.sin(theta);
    for (let h = 0; h < heads; h++) {
      const base = offset + h * headDim;
      const a = ropeStyle === "normal" ? base + 2 * i : base + i;
      const b = ropeStyle === "normal" ? a + 1 : a + half;
      const x0 = v[a], x1 = v[b];
      v[a] = x0 * cos - x1 * sin;
      v[b] = x0 * sin + x1 * cos;
    }
  }
}
