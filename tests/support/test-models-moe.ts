/**
 * Small random-weight mixture-of-experts models (qwen2moe, qwen3moe), laid out as llama.cpp
 * loads them (src/models/qwen2moe.cpp, qwen3moe.cpp): the attention of qwen2 (biases) or qwen3
 * (Q/K norms), and in place of the dense feed-forward a router `ffn_gate_inp` (F32, as
 * llama.cpp's converter and quantizer keep it), the experts stacked in 3-D tensors
 * `ffn_{gate,up,down}_exps` ([cols, rows, experts]) and, for qwen2moe, a shared expert
 * `ffn_{gate,up,down}_shexp` with its scalar gate `ffn_gate_inp_shexp` (a vector, F32).
 *
 * Weight types: one type for every matrix, or "Q4_K_M", the mix llama.cpp's quantizer makes
 * for that file type (src/llama-quant.cpp llama_tensor_get_type, for a model of 8 experts):
 * - attn_k, attn_v: Q8_0 ("for the 8-expert model, bumping this to Q8_0");
 * - attn_output: Q5_K (8 experts);
 * - ffn_down_exps and ffn_down_shexp: Q6_K in the layers use_more_bits picks (the first and
 *   last eighth, and every third between), Q4_K elsewhere;
 * - output: Q6_K;
 * - everything else (token_embd, attn_q, ffn_gate/up_exps, ffn_gate/up_shexp): Q4_K;
 * - the router and the shared expert's gate: F32 (never quantized), norms and biases F32.
 */
import { GgmlType } from "../../inference/mod.ts";
import { type MetaValue, type TensorSpec, u32 } from "./gguf-writer.ts";
import { LLAMA_FTYPE_MOSTLY_Q4_K_M, useMoreBits } from "./quantize-gguf.ts";
import {
  buildTestModel,
  drawnTensors,
  matrixPlan,
  planTensors,
  renamedMetadata,
  type TensorPlan,
  type TestModelOptions,
  vectorPlan,
  vocabSizeOf,
} from "./test-models.ts";

export type MoeTestArch = "qwen2moe" | "qwen3moe";
export const MOE_TEST_ARCHES: readonly MoeTestArch[] = ["qwen2moe", "qwen3moe"];

export interface MoeTestOptions {
  experts: number;
  used: number;
  expertFfn: number; // hidden width of one expert
  sharedFfn?: number; // qwen2moe's shared expert (default: 2 · expertFfn)
  /** Per-tensor types as llama.cpp's Q4_K_M picks them, instead of `type` everywhere. */
  mix?: "Q4_K_M";
}

export function isMoeTestArch(arch: string): arch is MoeTestArch {
  return (MOE_TEST_ARCHES as readonly string[]).includes(arch);
}

const DENSE_OF: Record<MoeTestArch, "qwen2" | "qwen3"> = { qwen2moe: "qwen2", qwen3moe: "qwen3" };

function moeOf(o: TestModelOptions): Required<Omit<MoeTestOptions, "mix">> & MoeTestOptions {
  const m = o.moe;
  if (!m) throw new Error(`a ${o.arch} test model needs moe options (experts, used, expertFfn)`);
  if (!(m.used >= 1 && m.used <= m.experts)) {
    throw new Error(`moe: ${m.used} used of ${m.experts} experts`);
  }
  return { ...m, sharedFfn: m.sharedFfn ?? 2 * m.expertFfn };
}

/** The type of a matrix tensor `name` (see the file comment). */
export function moeTensorType(o: TestModelOptions, name: string): GgmlType {
  if (name.endsWith("ffn_gate_inp.weight")) return GgmlType.F32;
  if (moeOf(o).mix !== "Q4_K_M") return o.type;
  const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  if (name === "output.weight") return GgmlType.Q6_K;
  if (/attn_[kv]\.weight$/.test(name)) return GgmlType.Q8_0;
  if (name.endsWith("attn_output.weight")) return GgmlType.Q5_K;
  if (/ffn_down_(exps|shexp)\.weight$/.test(name) && useMoreBits(layer, o.layers)) {
    return GgmlType.Q6_K;
  }
  return GgmlType.Q4_K;
}

/** The tensors of a MoE test model: the dense plan's attention, the MoE feed-forward per layer. */
export function planMoeTestTensors(o: TestModelOptions, vocabSize: number): TensorPlan[] {
  const m = moeOf(o);
  const dense = planTensors({ ...o, arch: DENSE_OF[o.arch as MoeTestArch] }, vocabSize);
  const branch = 1 / Math.sqrt(2 * o.layers);
  const mat = matrixPlan;
  const out: TensorPlan[] = [];
  for (const p of dense) {
    if (/^blk\.\d+\.ffn_(gate|up|down)\.weight$/.test(p.name)) continue;
    out.push(p);
    const norm = /^blk\.(\d+)\.ffn_norm\.weight$/.exec(p.name);
    if (!norm) continue;
    const b = `blk.${norm[1]}`;
    const { dim } = o;
    const { experts, expertFfn: f, sharedFfn: s } = m;
    // Router logits with a spread of ~3, so the top-k choice is rarely a near tie.
    out.push(mat(`${b}.ffn_gate_inp.weight`, [dim, experts], 3 / Math.sqrt(dim)));
    out.push(mat(`${b}.ffn_gate_exps.weight`, [dim, f, experts], 1 / Math.sqrt(dim)));
    out.push(mat(`${b}.ffn_up_exps.weight`, [dim, f, experts], 1 / Math.sqrt(dim)));
    out.push(mat(`${b}.ffn_down_exps.weight`, [f, dim, experts], branch / Math.sqrt(f)));
    if (o.arch === "qwen2moe") {
      out.push(vectorPlan(`${b}.ffn_gate_inp_shexp.weight`, [dim], 0, 1 / Math.sqrt(dim)));
      out.push(mat(`${b}.ffn_gate_shexp.weight`, [dim, s], 1 / Math.sqrt(dim)));
      out.push(mat(`${b}.ffn_up_shexp.weight`, [dim, s], 1 / Math.sqrt(dim)));
      out.push(mat(`${b}.ffn_down_shexp.weight`, [s, dim], branch / Math.sqrt(s)));
    }
  }
  return out;
}

/** Builds a qwen2moe / qwen3moe test model: the dense model's metadata renamed, MoE tensors. */
export async function buildMoeTestModel(
  o: TestModelOptions,
): Promise<{ metadata: Record<string, MetaValue>; tensors: TensorSpec[] }> {
  const m = moeOf(o);
  const arch = o.arch as MoeTestArch;
  const denseArch = DENSE_OF[arch];
  if (m.expertFfn % 256 !== 0 || m.sharedFfn % 256 !== 0) {
    // Q4_K / Q6_K rows (and so the down projections' widths) are whole 256-value blocks.
    throw new Error(`moe: expert widths must be multiples of 256, got ${m.expertFfn}`);
  }
  // The dense model checks the shared options and brings the tokenizer's metadata.
  const dense = await buildTestModel({ ...o, arch: denseArch, ffn: m.expertFfn, moe: undefined });
  const metadata = renamedMetadata(dense.metadata, denseArch, arch);
  const typeName = m.mix ?? GgmlType[o.type];
  metadata["general.architecture"] = arch;
  metadata["general.name"] = `grove-test-${arch}-${typeName}`;
  if (m.mix === "Q4_K_M") {
    metadata["general.file_type"] = u32(LLAMA_FTYPE_MOSTLY_Q4_K_M);
    metadata["general.quantization_version"] = u32(2);
  }
  // As Qwen's own files: feed_forward_length is the dense width the experts replace.
  metadata[`${arch}.feed_forward_length`] = u32(m.expertFfn * m.used);
  metadata[`${arch}.expert_count`] = u32(m.experts);
  metadata[`${arch}.expert_used_count`] = u32(m.used);
  metadata[`${arch}.expert_feed_forward_length`] = u32(m.expertFfn);
  if (arch === "qwen2moe") {
    metadata[`${arch}.expert_shared_feed_forward_length`] = u32(m.sharedFfn);
  }
  const tensors = drawnTensors(
    planMoeTestTensors(o, vocabSizeOf(dense)),
    (p) => p.matrix ? moeTensorType(o, p.name) : GgmlType.F32,
    o.seed,
  );
  return { metadata, tensors };
}
