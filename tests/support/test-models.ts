/**
 * Small random-weight models of the architectures Grove runs, laid out as
 * llama.cpp loads them (metadata keys, tensor names and shapes), so tests can
 * compare Grove with llama.cpp on every weight type without big downloads.
 *
 * - llama: normal RoPE. llama.cpp's converter permutes Q/K rows so that ggml's
 *   normal (interleaved-pair) rope applies; random weights have no "before
 *   permutation" to honour, so they are drawn directly in that layout.
 * - qwen2: NeoX RoPE, biases on attn_q/attn_k/attn_v.
 * - qwen3: NeoX RoPE, per-head attn_q_norm/attn_k_norm, explicit key_length.
 *
 * The tokenizer (a 512-token SentencePiece vocabulary) is copied from
 * stories260K.gguf. Same options, same bytes: every tensor draws from its own
 * PRNG stream, seeded by the model seed and the tensor's name.
 *
 * CLI: deno run -A tests/support/test-models.ts --arch qwen2 --type Q4_K --dim 256 \
 *        --layers 2 --heads 4 --kv-heads 2 --ffn 512 [--head-dim 64] \
 *        [--seed 1] [--tied] [--context 512] --out FILE
 *      MoE (--arch qwen2moe / qwen3moe): --experts 8 [--used 2] [--expert-ffn N (default --ffn)]
 *        [--shared-ffn N] [--mix Q4_K_M]
 */
import { blockGeometry, GgmlType, ggmlTypeName } from "../../inference/mod.ts";
import { openGguf } from "../../inference/mod.ts";
import { quantize } from "../../inference/mod.ts";
import { createRng } from "../../inference/mod.ts";
import {
  f32,
  type MetaValue,
  type TensorSpec,
  typedMetadata,
  u32,
  writeGguf,
} from "./gguf-writer.ts";
import { isQuantized, llamaFileType, QUANTIZE_TYPES } from "./quantize-gguf.ts";
import { STORIES } from "./fixtures.ts";
import {
  buildMoeTestModel,
  isMoeTestArch,
  type MoeTestArch,
  type MoeTestOptions,
} from "./test-models-moe.ts";
import {
  buildDenseTestModel,
  type DenseTestArch,
  type DenseTestOptions,
  isDenseTestArch,
} from "./test-models-dense.ts";
import { buildQwen35Model, qwen35OptionsOf } from "./test-models-qwen35.ts";
import { buildGptOssTestModel, type GptOssTestOptions } from "./test-models-gptoss.ts";

export type TestArch =
  | "llama"
  | "qwen2"
  | "qwen3"
  | MoeTestArch
  | DenseTestArch
  | "gpt-oss"
  | "qwen35moe";
export const TEST_ARCHES: readonly TestArch[] = [
  "llama",
  "qwen2",
  "qwen3",
  "qwen2moe",
  "qwen3moe",
  "gemma3",
  "phi3",
  "qwen35moe",
  "gpt-oss",
];

export interface TestModelOptions {
  arch: TestArch;
  type: GgmlType; // of the 2-D matrices (token_embd and output included); norms/biases stay F32
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  headDim?: number; // default dim / heads
  seed: number;
  tiedEmbeddings?: boolean; // no output.weight: the output reuses token_embd
  contextLength?: number; // default 512
  vocabFrom?: string; // GGUF whose tokenizer.* metadata is copied; default stories260K.gguf
  moe?: MoeTestOptions; // qwen2moe, qwen3moe (test-models-moe.ts)
  dense?: DenseTestOptions; // gemma3, phi3 (test-models-dense.ts)
  gptOss?: GptOssTestOptions; // gpt-oss (test-models-gptoss.ts)
}

/** How a tensor's values are drawn: centre + scale * (noise of unit variance). */
export interface TensorPlan {
  name: string;
  dims: number[];
  matrix: boolean; // stored in the weight type; otherwise F32
  centre: number;
  scale: number;
}

const ARCH_DEFAULTS: Record<TestArch, { ropeBase: number; eps: number }> = {
  llama: { ropeBase: 10000, eps: 1e-5 },
  qwen2: { ropeBase: 1000000, eps: 1e-6 },
  qwen3: { ropeBase: 1000000, eps: 1e-6 },
  qwen2moe: { ropeBase: 1000000, eps: 1e-6 },
  qwen3moe: { ropeBase: 1000000, eps: 1e-6 },
  gemma3: { ropeBase: 1000000, eps: 1e-6 },
  phi3: { ropeBase: 10000, eps: 1e-5 },
  qwen35moe: { ropeBase: 10000000, eps: 1e-6 },
  "gpt-oss": { ropeBase: 150000, eps: 1e-5 },
};

export function defaultVocabPath(): string {
  return STORIES;
}

function headDimOf(o: TestModelOptions): number {
  return o.headDim ?? o.dim / o.heads;
}

function validate(o: TestModelOptions): void {
  const hd = headDimOf(o);
  if (!TEST_ARCHES.includes(o.arch)) throw new Error(`unknown test architecture "${o.arch}"`);
  if (!QUANTIZE_TYPES.includes(o.type)) {
    throw new Error(`test models cannot use weight type ${ggmlTypeName(o.type)}`);
  }
  for (const [k, v] of Object.entries({ ...o, headDim: hd })) {
    if (typeof v === "number" && (!Number.isInteger(v) || v < 0)) {
      throw new Error(`test model option ${k} must be a whole number, got ${v}`);
    }
  }
  if (o.arch === "qwen2" && hd * o.heads !== o.dim) {
    // llama.cpp shapes qwen2's attn_q as [dim, dim]: it has no separate head size.
    throw new Error(`qwen2 needs headDim = dim / heads (${o.dim / o.heads}), got ${hd}`);
  }
  if (o.seed >= 2 ** 21) throw new Error(`test model seed must be below 2^21, got ${o.seed}`);
  if (hd % 2 !== 0) throw new Error(`head dimension ${hd} must be even for RoPE`);
  if (o.heads % o.kvHeads !== 0) {
    throw new Error(`heads (${o.heads}) must be a multiple of kv heads (${o.kvHeads})`);
  }
  const block = blockGeometry(o.type)!.blockSize;
  const rows = { dim: o.dim, "heads * headDim": o.heads * hd, ffn: o.ffn };
  for (const [what, n] of Object.entries(rows)) {
    if (n % block !== 0) {
      throw new Error(
        `${ggmlTypeName(o.type)} needs row lengths that are multiples of ${block}: ` +
          `${what} is ${n}`,
      );
    }
  }
}

/** The tensors of a model, in file order, with their shapes and value ranges. */
/** A matrix (stored in the weight type) of values around 0 with std `scale`. */
export function matrixPlan(name: string, dims: number[], scale: number): TensorPlan {
  return { name, dims, matrix: true, centre: 0, scale };
}

/** A vector (stored as F32) of values around `centre` with std `scale`. */
export function vectorPlan(
  name: string,
  dims: number[],
  centre: number,
  scale: number,
): TensorPlan {
  return { name, dims, matrix: false, centre, scale };
}

export function planTensors(o: TestModelOptions, vocabSize = 512): TensorPlan[] {
  const hd = headDimOf(o);
  const q = o.heads * hd, kv = o.kvHeads * hd;
  const mat = (name: string, cols: number, rows: number, scale = 1 / Math.sqrt(cols)) =>
    matrixPlan(name, [cols, rows], scale);
  const vec = (name: string, n: number, centre: number, scale: number) =>
    vectorPlan(name, [n], centre, scale);
  // The embedding (std 1) dominates the residual stream, so each position's
  // prediction follows its own token (attention only perturbs it) and greedy
  // decoding wanders instead of settling on one token; branches are damped by
  // depth. Tied embeddings would then make every token predict itself (its
  // logit is |e|^2), so there the feed-forward output is made to dominate the
  // stream instead: the logits become a random function of the token.
  const branch = 1 / Math.sqrt(2 * o.layers);
  const ffnGain = o.tiedEmbeddings ? 8 * Math.sqrt(o.dim) : branch;
  const plans: TensorPlan[] = [mat("token_embd.weight", o.dim, vocabSize, 1)];
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}`;
    plans.push(vec(`${b}.attn_norm.weight`, o.dim, 1, 0.1));
    plans.push(mat(`${b}.attn_q.weight`, o.dim, q));
    if (o.arch === "qwen2") plans.push(vec(`${b}.attn_q.bias`, q, 0, 0.2));
    plans.push(mat(`${b}.attn_k.weight`, o.dim, kv));
    if (o.arch === "qwen2") plans.push(vec(`${b}.attn_k.bias`, kv, 0, 0.2));
    plans.push(mat(`${b}.attn_v.weight`, o.dim, kv));
    if (o.arch === "qwen2") plans.push(vec(`${b}.attn_v.bias`, kv, 0, 0.2));
    plans.push(mat(`${b}.attn_output.weight`, q, o.dim, branch / Math.sqrt(q)));
    if (o.arch === "qwen3") {
      plans.push(vec(`${b}.attn_q_norm.weight`, hd, 1, 0.1));
      plans.push(vec(`${b}.attn_k_norm.weight`, hd, 1, 0.1));
    }
    plans.push(vec(`${b}.ffn_norm.weight`, o.dim, 1, 0.1));
    plans.push(mat(`${b}.ffn_gate.weight`, o.dim, o.ffn));
    plans.push(mat(`${b}.ffn_up.weight`, o.dim, o.ffn));
    plans.push(mat(`${b}.ffn_down.weight`, o.ffn, o.dim, ffnGain / Math.sqrt(o.ffn)));
  }
  plans.push(vec("output_norm.weight", o.dim, 1, 0.1));
  // Logits with a spread of ~3: peaked distributions, as a trained model gives.
  if (!o.tiedEmbeddings) plans.push(mat("output.weight", o.dim, vocabSize, 3 / Math.sqrt(o.dim)));
  return plans;
}

/** FNV-1a of the name: a stable per-tensor stream id. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Values with mean `centre`, std `scale`: a sum of three uniforms (no transcendentals). */
export function drawValues(plan: TensorPlan, seed: number): Float32Array {
  const rng = createRng(seed * 2 ** 32 + nameHash(plan.name));
  const n = plan.dims.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat() + rng.nextFloat() + rng.nextFloat() - 1.5; // variance 1/4
    out[i] = plan.centre + plan.scale * 2 * u;
  }
  return out;
}

function metadataFor(o: TestModelOptions, vocab: Record<string, MetaValue>, vocabSize: number) {
  const hd = headDimOf(o);
  const a = o.arch;
  const m: Record<string, MetaValue> = {
    "general.architecture": a,
    "general.name": `grove-test-${a}-${ggmlTypeName(o.type)}`,
    "general.file_type": u32(llamaFileType(o.type)),
  };
  if (isQuantized(o.type)) m["general.quantization_version"] = u32(2);
  m[`${a}.context_length`] = u32(o.contextLength ?? 512);
  m[`${a}.embedding_length`] = u32(o.dim);
  m[`${a}.block_count`] = u32(o.layers);
  m[`${a}.feed_forward_length`] = u32(o.ffn);
  m[`${a}.attention.head_count`] = u32(o.heads);
  m[`${a}.attention.head_count_kv`] = u32(o.kvHeads);
  m[`${a}.attention.layer_norm_rms_epsilon`] = f32(ARCH_DEFAULTS[a].eps);
  m[`${a}.rope.freq_base`] = f32(ARCH_DEFAULTS[a].ropeBase);
  m[`${a}.rope.dimension_count`] = u32(hd);
  if (a === "qwen3" || hd !== o.dim / o.heads) {
    m[`${a}.attention.key_length`] = u32(hd);
    m[`${a}.attention.value_length`] = u32(hd);
  }
  if (a === "llama") m["llama.vocab_size"] = u32(vocabSize);
  return { ...m, ...vocab };
}

/**
 * A base model's metadata with its architecture's keys (`<from>.…`) renamed to `<to>.…`: the
 * derived test architectures (MoE, dense, gpt-oss) start from a base model's.
 */
export function renamedMetadata(
  metadata: Record<string, MetaValue>,
  from: string,
  to: string,
): Record<string, MetaValue> {
  const out: Record<string, MetaValue> = {};
  for (const [key, value] of Object.entries(metadata)) {
    out[key.startsWith(`${from}.`) ? to + key.slice(from.length) : key] = value;
  }
  return out;
}

/** A built model's vocabulary size: its token embedding's second dimension. */
export function vocabSizeOf(model: { tensors: TensorSpec[] }): number {
  return model.tensors.find((t) => t.name === "token_embd.weight")!.dims[1];
}

/** Each plan's tensor in the type `typeOf` gives it, its values drawn (lazily) from `seed`. */
export function drawnTensors<P extends TensorPlan>(
  plans: P[],
  typeOf: (p: P) => GgmlType,
  seed: number,
): TensorSpec[] {
  return plans.map((p) => {
    const type = typeOf(p);
    return {
      name: p.name,
      dims: p.dims,
      type,
      data: () => quantize(type, drawValues(p, seed), p.dims[0]),
    };
  });
}

/** The tokenizer metadata of the GGUF at `path` (a test model's vocabulary) and its size. */
export async function readVocab(
  path = defaultVocabPath(),
): Promise<{ vocab: Record<string, MetaValue>; size: number }> {
  const src = await openGguf(path);
  const all = typedMetadata(src);
  const vocab = Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith("tokenizer.")));
  const tokens = src.metadata["tokenizer.ggml.tokens"];
  if (!Array.isArray(tokens)) throw new Error(`${src.path} has no tokenizer.ggml.tokens`);
  return { vocab, size: tokens.length };
}

/** Builds the model's metadata and (lazily drawn) tensors. */
export async function buildTestModel(
  o: TestModelOptions,
): Promise<{ metadata: Record<string, MetaValue>; tensors: TensorSpec[] }> {
  if (isMoeTestArch(o.arch)) return buildMoeTestModel(o);
  if (isDenseTestArch(o.arch)) return buildDenseTestModel(o);
  if (o.arch === "qwen35moe") return buildQwen35Model(qwen35OptionsOf(o));
  if (o.arch === "gpt-oss") return buildGptOssTestModel(o);
  validate(o);
  const { vocab, size } = await readVocab(o.vocabFrom);
  const tensors = drawnTensors(
    planTensors(o, size),
    (p) => p.matrix ? o.type : GgmlType.F32,
    o.seed,
  );
  return { metadata: metadataFor(o, vocab, size), tensors };
}

export async function writeTestModel(path: string, o: TestModelOptions): Promise<void> {
  await writeGguf(path, await buildTestModel(o));
}

/** Parses `--key value` flags into options (numbers where the option is numeric). */
export function parseTestModelArgs(args: string[]): TestModelOptions & { out: string } {
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument "${a}"`);
    const key = a.slice(2);
    if (key === "tied") flags.tied = "1";
    else if (i + 1 < args.length) flags[key] = args[++i];
    else throw new Error(`flag ${a} needs a value`);
  }
  const num = (k: string, fallback?: number): number => {
    if (flags[k] === undefined) {
      if (fallback !== undefined) return fallback;
      throw new Error(`missing --${k}`);
    }
    const v = Number(flags[k]);
    if (!Number.isInteger(v)) throw new Error(`--${k} must be a whole number, got "${flags[k]}"`);
    return v;
  };
  const type = GgmlType[(flags.type ?? "F32").toUpperCase() as keyof typeof GgmlType];
  if (type === undefined) throw new Error(`unknown --type "${flags.type}"`);
  if (!flags.out) throw new Error("missing --out FILE");
  const heads = num("heads");
  return {
    arch: (flags.arch ?? "llama") as TestArch,
    type,
    dim: num("dim"),
    layers: num("layers", 2),
    heads,
    kvHeads: num("kv-heads", heads),
    ffn: num("ffn"),
    headDim: flags["head-dim"] === undefined ? undefined : num("head-dim"),
    seed: num("seed", 1),
    tiedEmbeddings: flags.tied === "1",
    contextLength: num("context", 512),
    vocabFrom: flags.vocab,
    out: flags.out,
    moe: flags.experts === undefined ? undefined : {
      experts: num("experts"),
      used: num("used", 2),
      expertFfn: num("expert-ffn", num("ffn")),
      sharedFfn: flags["shared-ffn"] === undefined ? undefined : num("shared-ffn"),
      mix: flags.mix === undefined ? undefined : moeMix(flags.mix),
    },
  };
}

function moeMix(mix: string): "Q4_K_M" {
  if (mix.toUpperCase() !== "Q4_K_M") throw new Error(`--mix takes Q4_K_M, not "${mix}"`);
  return "Q4_K_M";
}

if (import.meta.main) {
  try {
    const { out, ...options } = parseTestModelArgs(Deno.args);
    await writeTestModel(out, options);
    console.log(`wrote ${out}`);
  } catch (e) {
    console.error(`test-models: ${(e as Error).message}`);
    Deno.exit(1);
  }
}

/**
 * A model slow enough to act on mid-stream (freeze, cut or kill its node while it answers):
 * random F32 weights with stories260K's vocabulary, 8 layers of dim 512 (~100 MB), ~40 tokens/s
 * on one core here. Written to `path`, which it answers.
 */
export async function writeSlowModel(path: string): Promise<string> {
  await writeTestModel(path, {
    arch: "llama",
    type: GgmlType.F32,
    dim: 512,
    layers: 8,
    heads: 8,
    kvHeads: 8,
    ffn: 1536,
    seed: 1,
    contextLength: 4096,
  });
  return path;
}
