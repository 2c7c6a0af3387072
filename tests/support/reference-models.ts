/**
 * The GGUF files Grove is checked against llama.cpp on: the shared
 * stories260K fixture, Grove's own re-quantizations of it, and generated test
 * models of every architecture × weight type. Each is rebuilt
 * deterministically, so the references in tests/reference/ name a sha256
 * that a rebuild must reproduce.
 */
import { GgmlType, SUPPORTED_WEIGHT_TYPES } from "../../inference/mod.ts";
import { quantizeGguf } from "./quantize-gguf.ts";
import { type TestArch, writeTestModel } from "./test-models.ts";
import { STORIES } from "./fixtures.ts";
import { generatedReference } from "./reference-generated.ts";
import { MOE_REFERENCE_MODELS } from "./reference-models-moe.ts";
import { QWEN35_REFERENCE_MODELS } from "./reference-models-qwen35.ts";
import { DENSE_REFERENCE_MODELS } from "./reference-models-dense.ts";
import { CONTEXT_REFERENCE_MODELS } from "./reference-models-context.ts";
import { GPTOSS_REFERENCE_MODELS } from "./reference-models-gptoss.ts";

export interface ReferencePrompt {
  name: string;
  /** What the tokens say, for readers; the tokens are what is run. */
  text: string;
  promptTokens: number[];
}

export interface ReferenceModel {
  /** Also the reference file's name: tests/reference/<name>.json. */
  name: string;
  /** Puts the GGUF file in `dir` (or finds it) and returns its path. */
  build: (dir: string) => Promise<string>;
  prompts: ReferencePrompt[];
  steps: number;
  topN: number;
  /** llama.cpp's KV cache type for this reference (default F32); Grove's cache then matches. */
  kvCache?: "F32" | "F16";
}

const STORY_PROMPTS: ReferencePrompt[] = [
  { name: "bos", text: "<s>", promptTokens: [1] },
  {
    // Tokenized by llama.cpp itself (SentencePiece, leading space added).
    name: "sentence",
    text: "<s> Tom and his dog went to the",
    promptTokens: [1, 274, 287, 269, 345, 400, 428, 263, 377, 267, 265],
  },
];

const stories = (type?: GgmlType): ReferenceModel => ({
  name: type === undefined ? "stories260K" : `stories260K-${GgmlType[type].toLowerCase()}`,
  build: async (dir) => {
    const source = STORIES;
    if (type === undefined) return source;
    const out = `${dir}/stories260K-${GgmlType[type]}.gguf`;
    await quantizeGguf(source, out, type);
    return out;
  },
  prompts: STORY_PROMPTS,
  steps: 40,
  topN: 10,
});

export const TEST_MODEL_ARCHES: readonly TestArch[] = ["llama", "qwen2", "qwen3"];
export const TEST_MODEL_TYPES = SUPPORTED_WEIGHT_TYPES;

/**
 * Small on purpose (references regenerate in seconds), yet covering GQA and
 * a head width other than dim / heads (qwen3).
 */
function testModelShape(arch: TestArch) {
  return arch === "qwen3"
    ? { dim: 256, layers: 2, heads: 8, kvHeads: 4, headDim: 64, ffn: 512 }
    : { dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512 };
}

const testModel = (arch: TestArch, type: GgmlType, tied = false): ReferenceModel =>
  generatedReference(
    `test-${arch}-${GgmlType[type].toLowerCase()}${tied ? "-tied" : ""}`,
    (out) =>
      writeTestModel(out, {
        arch,
        type,
        seed: 1,
        vocabFrom: STORIES,
        ...testModelShape(arch),
        tiedEmbeddings: tied,
      }),
  );

export const REFERENCE_MODELS: readonly ReferenceModel[] = [
  stories(),
  stories(GgmlType.Q8_0),
  stories(GgmlType.Q4_0),
  // Blocks of 32 fit its 64-wide rows: the types published K-quant files fall back to.
  stories(GgmlType.Q5_0),
  stories(GgmlType.IQ4_NL),
  ...TEST_MODEL_ARCHES.flatMap((arch) => TEST_MODEL_TYPES.map((type) => testModel(arch, type))),
  // The head reuses the token embedding (no output.weight), as Qwen3-0.6B and SmolLM do.
  testModel("qwen3", GgmlType.F32, true),
  ...MOE_REFERENCE_MODELS,
  ...QWEN35_REFERENCE_MODELS,
  ...DENSE_REFERENCE_MODELS,
  ...CONTEXT_REFERENCE_MODELS,
  ...GPTOSS_REFERENCE_MODELS,
];

export function referenceModel(name: string): ReferenceModel | undefined {
  return REFERENCE_MODELS.find((m) => m.name === name);
}
