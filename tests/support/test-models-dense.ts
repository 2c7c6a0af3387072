/**
 * Small random-weight gemma3 and phi3 models, laid out as llama.cpp loads them
 * (src/models/gemma3.cpp, phi3.cpp; tensor names in src/llama-arch.cpp):
 * - gemma3: qwen3's attention (per-head Q/K norms, explicit key width), a post-norm after the
 *   attention (`post_attention_norm`) and after the feed-forward (`post_ffw_norm`), a GELU
 *   feed-forward, a sliding window on the local layers with its own RoPE base
 *   (`rope.freq_base_swa`), and linear RoPE scaling on the global layers, as Gemma 3 4B+ have.
 *   The window pattern is 2 (layer 0 local, layer 1 global) and the window 8 positions, so a
 *   3-token prompt and 40 steps run far past it.
 * - phi3: llama's attention with Q, K and V fused into `attn_qkv` and gate and up fused into
 *   `ffn_up` (gate rows first), as Phi-3 files store them. The file says
 *   `attention.sliding_window` = 8, which llama.cpp ignores for phi3 (and so must Grove).
 *
 * The fused tensors are the unfused model's tensors, drawn as usual, with their rows
 * concatenated: quantization is per row, so the bytes are those of the parts end to end.
 *
 * Weight types: one type for every matrix, or "Q4_K_M", the mix llama.cpp's quantizer makes
 * for that file type (src/llama-quant.cpp llama_tensor_get_type):
 * - output: Q6_K;
 * - attn_v and ffn_down: Q6_K in the layers use_more_bits picks (the first and last eighth,
 *   and every third between: of 2 layers, layer 1), Q4_K elsewhere;
 * - attn_qkv (phi3): Q5_K;
 * - everything else (token_embd, attn_q, attn_k, attn_output, ffn_gate, ffn_up): Q4_K;
 * - norms: F32.
 * Every row here is a whole number of 256-value blocks, so no tensor falls back to Q8_0 or
 * Q5_0 as llama.cpp's quantizer does for rows that are not.
 */
import { GgmlType, quantize } from "../../inference/mod.ts";
import { f32, type MetaValue, type TensorSpec, u32 } from "./gguf-writer.ts";
import { LLAMA_FTYPE_MOSTLY_Q4_K_M, useMoreBits } from "./quantize-gguf.ts";
import {
  buildTestModel,
  drawValues,
  planTensors,
  renamedMetadata,
  type TensorPlan,
  type TestModelOptions,
  vectorPlan,
  vocabSizeOf,
} from "./test-models.ts";

export type DenseTestArch = "gemma3" | "phi3";
export const DENSE_TEST_ARCHES: readonly DenseTestArch[] = ["gemma3", "phi3"];

export interface DenseTestOptions {
  /** Per-tensor types as llama.cpp's Q4_K_M picks them, instead of `type` everywhere. */
  mix?: "Q4_K_M";
  /**
   * phi3: LongRoPE as Phi-3.5 files have it: `rope_factors_long` / `rope_factors_short` (F32)
   * and `rope.scaling.attn_factor`, with an original context of LONG_ROPE_ORIGINAL positions,
   * so any context above it (llama.cpp pads its own to 256) turns by the long factors.
   */
  longRope?: boolean;
  /** gemma3: `final_logit_softcapping`, which Gemma 2 had and Gemma 3's configurations drop. */
  logitSoftcap?: number;
}

export const LONG_ROPE_ORIGINAL = 64;

export function isDenseTestArch(arch: string): arch is DenseTestArch {
  return (DENSE_TEST_ARCHES as readonly string[]).includes(arch);
}

/** The architecture whose test model each one extends. */
const BASE_OF: Record<DenseTestArch, "qwen3" | "llama"> = { gemma3: "qwen3", phi3: "llama" };
const GEMMA3_WINDOW = 8;
const GEMMA3_PATTERN = 2;

/** The type of matrix tensor `name` (see the file comment). */
export function denseTensorType(o: TestModelOptions, name: string): GgmlType {
  if (o.dense?.mix !== "Q4_K_M") return o.type;
  const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  if (name === "output.weight") return GgmlType.Q6_K;
  if (name.endsWith("attn_qkv.weight")) return GgmlType.Q5_K;
  if (/(attn_v|ffn_down)\.weight$/.test(name) && useMoreBits(layer, o.layers)) {
    return GgmlType.Q6_K;
  }
  return GgmlType.Q4_K;
}

const vec = (name: string, n: number, centre: number, scale: number): TensorPlan =>
  vectorPlan(name, [n], centre, scale);

/**
 * gemma3's tensors: the base plan with the two post-norms per layer. The embedding is scaled
 * by sqrt(dim) in the graph, so the post-normed branches (of rms ~ their norm weights) are
 * small next to it, as the depth damping makes them in the other test models; the attention's
 * is made 3x larger so the window's effect is plain in the logits.
 */
function planGemma3(base: TensorPlan[]): TensorPlan[] {
  const out: TensorPlan[] = [];
  for (const p of base) {
    out.push(p);
    const b = /^(blk\.\d+)\.(attn_output|ffn_down)\.weight$/.exec(p.name);
    if (b?.[2] === "attn_output") {
      out.push(vec(`${b[1]}.post_attention_norm.weight`, p.dims[1], 3, 0.3));
    } else if (b?.[2] === "ffn_down") {
      out.push(vec(`${b[1]}.post_ffw_norm.weight`, p.dims[1], 1, 0.1));
    }
  }
  return out;
}

/** A fused tensor: the parts' rows end to end, each part drawn and quantized as its own plan. */
interface FusedPlan extends TensorPlan {
  parts: TensorPlan[];
}

/** phi3's tensors: attn_q/k/v fused into attn_qkv, ffn_gate and ffn_up into ffn_up. */
function planPhi3(base: TensorPlan[]): (TensorPlan | FusedPlan)[] {
  const byName = new Map(base.map((p) => [p.name, p]));
  const out: (TensorPlan | FusedPlan)[] = [];
  const fuse = (name: string, parts: TensorPlan[]): FusedPlan => ({
    ...parts[0],
    name,
    dims: [parts[0].dims[0], parts.reduce((s, p) => s + p.dims[1], 0)],
    parts,
  });
  for (const p of base) {
    const m = /^(blk\.\d+)\.(attn_q|attn_k|attn_v|ffn_gate|ffn_up)\.weight$/.exec(p.name);
    if (!m) out.push(p);
    else if (m[2] === "attn_q") {
      const parts = ["attn_q", "attn_k", "attn_v"].map((t) => byName.get(`${m[1]}.${t}.weight`)!);
      out.push(fuse(`${m[1]}.attn_qkv.weight`, parts));
    } else if (m[2] === "ffn_gate") {
      const parts = ["ffn_gate", "ffn_up"].map((t) => byName.get(`${m[1]}.${t}.weight`)!);
      out.push(fuse(`${m[1]}.ffn_up.weight`, parts));
    }
  }
  return out;
}

/** The bytes of a plan in `type`: a fused plan's parts quantized one by one, end to end. */
function tensorBytes(p: TensorPlan | FusedPlan, type: GgmlType, seed: number): Uint8Array {
  if (!("parts" in p)) return quantize(type, drawValues(p, seed), p.dims[0]);
  const parts = p.parts.map((q) => quantize(type, drawValues(q, seed), q.dims[0]));
  const out = new Uint8Array(parts.reduce((s, b) => s + b.byteLength, 0));
  let at = 0;
  for (const b of parts) out.set(b, (at += b.byteLength) - b.byteLength);
  return out;
}

/** Builds a gemma3 / phi3 test model: the base model's metadata renamed, its own tensors. */
export async function buildDenseTestModel(
  o: TestModelOptions,
): Promise<{ metadata: Record<string, MetaValue>; tensors: TensorSpec[] }> {
  const arch = o.arch as DenseTestArch;
  const baseArch = BASE_OF[arch];
  const mix = o.dense?.mix;
  if (mix && [o.dim, o.ffn, o.heads * (o.headDim ?? o.dim / o.heads)].some((n) => n % 256)) {
    throw new Error("Q4_K_M test models need widths that are multiples of 256");
  }
  // The base model checks the shared options and brings the tokenizer's metadata.
  const baseOptions = { ...o, arch: baseArch, dense: undefined };
  const base = await buildTestModel(baseOptions);
  const metadata = renamedMetadata(base.metadata, baseArch, arch);
  metadata["general.architecture"] = arch;
  // llama.cpp gives a model named like "phi3" the RSTRIP attributes of Phi-3's special tokens,
  // which it looks up by text; stories260K's vocabulary lacks "<|endoftext|>", so not that name.
  const shown = arch === "phi3" ? "phi" : arch;
  metadata["general.name"] = `grove-test-${shown}-${mix ?? GgmlType[o.type]}`;
  if (mix === "Q4_K_M") {
    metadata["general.file_type"] = u32(LLAMA_FTYPE_MOSTLY_Q4_K_M);
    metadata["general.quantization_version"] = u32(2);
  }
  if (arch === "gemma3") {
    metadata["gemma3.attention.layer_norm_rms_epsilon"] = f32(1e-6);
    metadata["gemma3.rope.freq_base"] = f32(1000000);
    metadata["gemma3.rope.freq_base_swa"] = f32(10000);
    metadata["gemma3.rope.scaling.type"] = "linear";
    metadata["gemma3.rope.scaling.factor"] = f32(8);
    metadata["gemma3.attention.sliding_window"] = u32(GEMMA3_WINDOW);
    metadata["gemma3.attention.sliding_window_pattern"] = u32(GEMMA3_PATTERN);
    if (o.dense?.logitSoftcap) {
      metadata["gemma3.final_logit_softcapping"] = f32(o.dense.logitSoftcap);
    }
  } else {
    metadata["phi3.attention.sliding_window"] = u32(8);
    if (o.dense?.longRope) {
      metadata["phi3.rope.scaling.original_context_length"] = u32(LONG_ROPE_ORIGINAL);
      metadata["phi3.rope.scaling.attn_factor"] = f32(1.19);
    }
  }
  const basePlan = planTensors(baseOptions, vocabSizeOf(base));
  const plans = arch === "gemma3" ? planGemma3(basePlan) : planPhi3(basePlan);
  if (arch === "phi3" && o.dense?.longRope) {
    // Per-pair divisors of the angle: near 1 (short), and up to ~10 (long), as Phi-3.5's are.
    const half = (o.headDim ?? o.dim / o.heads) / 2;
    plans.unshift(
      vec("rope_factors_long.weight", half, 5, 1.5),
      vec("rope_factors_short.weight", half, 1, 0.05),
    );
  }
  const tensors = plans.map((p): TensorSpec => {
    const type = p.matrix ? denseTensorType(o, p.name) : GgmlType.F32;
    return { name: p.name, dims: p.dims, type, data: () => tensorBytes(p, type, o.seed) };
  });
  return { metadata, tensors };
}
