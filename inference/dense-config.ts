/**
 * The parts of a dense model's config that only some architectures have, read from GGUF
 * metadata as llama.cpp reads them (src/models/gemma3.cpp, phi3.cpp load_arch_hparams):
 * gemma3's sliding-window layers, their own RoPE base, its embedding scale, query scale, GELU
 * feed-forward and optional final logit soft-capping; phi3's query scale. phi3's fused tensors
 * are split at load (fused-tensors.ts), and llama.cpp disables its sliding window, so Grove
 * ignores `phi3.attention.sliding_window` too.
 */
import type { GgufValue } from "./gguf.ts";

export interface DenseArchConfig {
  /** Positions a local layer's query sees, itself included (llama.cpp's n_swa). */
  slidingWindow?: number;
  /** Per layer: true where the layer attends only over the sliding window. */
  localLayers?: boolean[];
  /** RoPE base of the local layers (which also take no RoPE scaling). */
  ropeBaseLocal?: number;
  /**
   * Queries are multiplied by it after RoPE (ggml_scale on Q) and q·k is not scaled again, in
   * place of q·k / sqrt(headDim): the same up to rounding in f32, but with an f16 KV cache Q is
   * rounded to f16 after this scale.
   */
  attentionScale?: number;
  /** Multiplies the token embedding rows. */
  embedScale?: number;
  /** Activation of the gated feed-forward; SiLU when absent. */
  activation?: "silu" | "gelu";
  /** Final logits become cap·tanh(logit/cap). */
  logitSoftcap?: number;
}

function numberAt(meta: Record<string, GgufValue>, key: string): number | undefined {
  const v = meta[key];
  if (typeof v === "bigint") return Number(v);
  return typeof v === "number" ? v : undefined;
}

/**
 * Which layers are local, as llama_hparams::set_swa_pattern(period): in each run of `period`
 * layers all but the last are local (period 0: all). gemma3's loader reads the period as a
 * scalar only and keeps its default of 6 when the key is absent or an array.
 */
function localLayersOf(pattern: GgufValue | undefined, layers: number): boolean[] {
  const scalar = typeof pattern === "number" || typeof pattern === "bigint";
  const period = scalar ? Number(pattern) : 6;
  if (!Number.isInteger(period) || period < 0) {
    throw new Error(`sliding_window_pattern is ${pattern}; expected a whole number`);
  }
  return Array.from({ length: layers }, (_, l) => period === 0 || l % period < period - 1);
}

/** gemma3's and phi3's extra config; nothing for the other architectures. */
export function denseArchConfigOf(
  meta: Record<string, GgufValue>,
  arch: string,
  shape: { dim: number; heads: number; headDim: number; layers: number },
): DenseArchConfig {
  // phi3 scales Q by 1/sqrt(head width) before attention (src/models/phi3.cpp).
  if (arch === "phi3") return { attentionScale: Math.fround(1 / Math.sqrt(shape.headDim)) };
  if (arch !== "gemma3") return {};
  const k = (key: string) => `${arch}.${key}`;
  const out: DenseArchConfig = {
    embedScale: Math.fround(Math.sqrt(shape.dim)),
    activation: "gelu",
    // llama.cpp takes the 27B's scale (62 layers) from dim / heads, every other size's from
    // the key width; query_pre_attn_scalar itself is not in the GGUF.
    attentionScale: Math.fround(
      1 / Math.sqrt(shape.layers === 62 ? Math.floor(shape.dim / shape.heads) : shape.headDim),
    ),
  };
  const window = numberAt(meta, k("attention.sliding_window"));
  if (window !== undefined && window > 0) {
    if (!Number.isInteger(window)) throw new Error(`${k("attention.sliding_window")} is ${window}`);
    out.slidingWindow = window;
    out.localLayers = localLayersOf(meta[k("attention.sliding_window_pattern")], shape.layers);
    out.ropeBaseLocal = numberAt(meta, k("rope.freq_base_swa")) ?? 10000;
  }
  const cap = numberAt(meta, k("final_logit_softcapping"));
  if (cap !== undefined && cap > 0) out.logitSoftcap = cap;
  return out;
}
