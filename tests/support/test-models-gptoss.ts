/**
 * Small random-weight gpt-oss models, laid out as llama.cpp loads them
 * (src/models/openai-moe.cpp load_arch_tensors; names in src/llama-arch.cpp): attention with
 * biases on q, k, v and the output and a sink logit per head (`attn_sinks`), the MoE block's
 * input norm as `post_attention_norm`, a router with a bias, experts stacked in 3-D tensors with
 * per-expert biases (`ffn_{gate,up,down}_exps.bias`, [rows, experts]). The metadata has
 * gpt-oss's sliding window (8 positions here, on the even layers: llama.cpp's default pattern
 * of 2) and YaRN RoPE scaling as gpt-oss files have it (factor 4 over an original context of
 * 128 here; gpt-oss ships 32 over 4096).
 *
 * The expert projections have a spread of ~2, so swiglu_oai's clamps (gate ≤ 7, |up| ≤ 7) take
 * effect on a few values in ten thousand (some hundred over a reference run); wider, and the
 * heavy tail of the experts' outputs makes the Q8_0 rounding of the down projection's input
 * (CPU and llama.cpp, not the GPU) too coarse for the engines to be compared.
 *
 * Weight types: one type for every matrix (the router stays F32), or "MXFP4_MOE", the mix
 * gpt-oss GGUFs ship (ggml-org's gpt-oss-20b-MXFP4.gguf, llama.cpp's LLAMA_FTYPE_MOSTLY_MXFP4_MOE
 * in src/llama-quant.cpp llama_tensor_get_type): the 3-D expert tensors MXFP4, every other
 * matrix (token_embd, attn_q/k/v/output, output) Q8_0, the router (never quantized), norms,
 * biases and sinks F32. At gpt-oss-20b's shapes that mix comes to 10.15 GB of MXFP4, 1.91 GB
 * of Q8_0 and 37 MB of F32: 12.097 GB, the published file's 12.110 GB less its ~13 MB of
 * tokenizer metadata (F16 or BF16 attention and embeddings would add 1.8 GB).
 */
import { GgmlType } from "../../inference/mod.ts";
import { f32, type MetaValue, type TensorSpec, u32 } from "./gguf-writer.ts";
import {
  buildTestModel,
  drawnTensors,
  matrixPlan,
  renamedMetadata,
  type TensorPlan,
  type TestModelOptions,
  vectorPlan,
  vocabSizeOf,
} from "./test-models.ts";

export interface GptOssTestOptions {
  experts: number;
  used: number;
  expertFfn: number;
  /** Per-tensor types as gpt-oss's published files have them, instead of `type` everywhere. */
  mix?: "MXFP4_MOE";
}

export const GPTOSS_WINDOW = 8;
const LLAMA_FTYPE_MOSTLY_MXFP4_MOE = 38;

function gptOssOf(o: TestModelOptions): GptOssTestOptions {
  // The test-models CLI's --experts / --used / --expert-ffn arrive as `moe` (one type only).
  const m = o.moe;
  const g = o.gptOss ?? (m && { experts: m.experts, used: m.used, expertFfn: m.expertFfn });
  if (!g) throw new Error("a gpt-oss test model needs gptOss options (experts, used, expertFfn)");
  if (!(g.used >= 1 && g.used <= g.experts)) {
    throw new Error(`gpt-oss: ${g.used} used of ${g.experts} experts`);
  }
  return g;
}

/** The type of matrix tensor `name` (see the file comment). */
export function gptOssTensorType(o: TestModelOptions, name: string): GgmlType {
  if (name.endsWith("ffn_gate_inp.weight")) return GgmlType.F32;
  if (gptOssOf(o).mix !== "MXFP4_MOE") return o.type;
  return /_exps\.weight$/.test(name) ? GgmlType.MXFP4 : GgmlType.Q8_0;
}

/** The tensors of a gpt-oss test model, in file order. */
export function planGptOssTestTensors(o: TestModelOptions, vocabSize: number): TensorPlan[] {
  const { experts, expertFfn: f } = gptOssOf(o);
  const { dim } = o;
  const hd = o.headDim ?? dim / o.heads;
  const q = o.heads * hd, kv = o.kvHeads * hd;
  const branch = 1 / Math.sqrt(2 * o.layers);
  const mat = matrixPlan, vec = vectorPlan;
  const plans: TensorPlan[] = [mat("token_embd.weight", [dim, vocabSize], 1)];
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}`;
    plans.push(
      vec(`${b}.attn_norm.weight`, [dim], 1, 0.1),
      mat(`${b}.attn_q.weight`, [dim, q], 1 / Math.sqrt(dim)),
      vec(`${b}.attn_q.bias`, [q], 0, 0.2),
      mat(`${b}.attn_k.weight`, [dim, kv], 1 / Math.sqrt(dim)),
      vec(`${b}.attn_k.bias`, [kv], 0, 0.2),
      mat(`${b}.attn_v.weight`, [dim, kv], 1 / Math.sqrt(dim)),
      vec(`${b}.attn_v.bias`, [kv], 0, 0.2),
      mat(`${b}.attn_output.weight`, [q, dim], branch / Math.sqrt(q)),
      vec(`${b}.attn_output.bias`, [dim], 0, 0.1 * branch),
      // Sink logits near the scores' own size, so each head gives the sink a real share.
      vec(`${b}.attn_sinks.weight`, [o.heads], 0, 1),
      vec(`${b}.post_attention_norm.weight`, [dim], 1, 0.1),
      // Router logits with a spread of ~3, so the top-k choice is rarely a near tie.
      mat(`${b}.ffn_gate_inp.weight`, [dim, experts], 3 / Math.sqrt(dim)),
      vec(`${b}.ffn_gate_inp.bias`, [experts], 0, 0.5),
      mat(`${b}.ffn_gate_exps.weight`, [dim, f, experts], 2 / Math.sqrt(dim)),
      vec(`${b}.ffn_gate_exps.bias`, [f, experts], 0, 0.5),
      mat(`${b}.ffn_up_exps.weight`, [dim, f, experts], 2 / Math.sqrt(dim)),
      vec(`${b}.ffn_up_exps.bias`, [f, experts], 0, 0.5),
      mat(`${b}.ffn_down_exps.weight`, [f, dim, experts], branch / (4 * Math.sqrt(f))),
      vec(`${b}.ffn_down_exps.bias`, [dim, experts], 0, 0.1 * branch),
    );
  }
  plans.push(vec("output_norm.weight", [dim], 1, 0.1));
  plans.push(mat("output.weight", [dim, vocabSize], 3 / Math.sqrt(dim)));
  return plans;
}

/** Builds a gpt-oss test model: qwen3's metadata (tokenizer, shapes) renamed, its own tensors. */
export async function buildGptOssTestModel(
  o: TestModelOptions,
): Promise<{ metadata: Record<string, MetaValue>; tensors: TensorSpec[] }> {
  const g = gptOssOf(o);
  // The qwen3 model checks the shared options and brings the tokenizer's metadata.
  const base = await buildTestModel({ ...o, arch: "qwen3", ffn: g.expertFfn, gptOss: undefined });
  const a = "gpt-oss";
  const metadata = renamedMetadata(base.metadata, "qwen3", a);
  metadata["general.architecture"] = a;
  metadata["general.name"] = `grove-test-gpt-oss-${g.mix ?? GgmlType[o.type]}`;
  if (g.mix === "MXFP4_MOE") {
    metadata["general.file_type"] = u32(LLAMA_FTYPE_MOSTLY_MXFP4_MOE);
    metadata["general.quantization_version"] = u32(2);
  }
  metadata[`${a}.attention.layer_norm_rms_epsilon`] = f32(1e-5);
  metadata[`${a}.rope.freq_base`] = f32(150000);
  metadata[`${a}.rope.scaling.type`] = "yarn";
  metadata[`${a}.rope.scaling.factor`] = f32(4);
  metadata[`${a}.rope.scaling.original_context_length`] = u32(128);
  metadata[`${a}.attention.sliding_window`] = u32(GPTOSS_WINDOW);
  metadata[`${a}.feed_forward_length`] = u32(g.expertFfn);
  metadata[`${a}.expert_count`] = u32(g.experts);
  metadata[`${a}.expert_used_count`] = u32(g.used);
  metadata[`${a}.expert_feed_forward_length`] = u32(g.expertFfn);
  const tensors = drawnTensors(
    planGptOssTestTensors(o, vocabSizeOf(base)),
    (p) => p.matrix ? gptOssTensorType(o, p.name) : GgmlType.F32,
    o.seed,
  );
  return { metadata, tensors };
}
