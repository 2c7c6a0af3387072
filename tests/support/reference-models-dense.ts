/**
 * The gemma3 and phi3 test models Grove is checked against llama.cpp on: each in F32 (where
 * the architecture's arithmetic must agree to 1e-3), in F16, and in the Q4_K_M mix of its
 * published files (test-models-dense.ts says which tensor gets which type), and phi3 with
 * Phi-3.5's LongRoPE factors.
 */
import { GgmlType } from "../../inference/mod.ts";
import { type TestModelOptions, writeTestModel } from "./test-models.ts";
import type { DenseTestArch } from "./test-models-dense.ts";
import type { ReferenceModel } from "./reference-models.ts";
import { STORIES } from "./fixtures.ts";
import { generatedReference } from "./reference-generated.ts";

/**
 * gemma3: one KV head of 128 (query width 512 on a 256-wide stream), as Gemma 3 270M has one KV
 * head wider than dim / heads; phi3: GQA over heads of dim / heads.
 */
const SHAPES: Record<
  DenseTestArch,
  Pick<TestModelOptions, "dim" | "layers" | "heads" | "kvHeads" | "ffn" | "headDim">
> = {
  gemma3: { dim: 256, layers: 2, heads: 4, kvHeads: 1, headDim: 128, ffn: 512 },
  phi3: { dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512 },
};

const denseModel = (
  arch: DenseTestArch,
  type: GgmlType | "Q4_K_M",
  variant: { longRope?: boolean; logitSoftcap?: number; kvCache?: "F16" } = {},
): ReferenceModel => {
  const typeName = typeof type === "string" ? type : GgmlType[type];
  const tag = variant.longRope
    ? "-longrope"
    : variant.logitSoftcap
    ? "-softcap"
    : variant.kvCache
    ? "-kvf16"
    : "";
  const { kvCache, ...dense } = variant;
  const name = `test-${arch}${tag}-${typeName.toLowerCase()}`;
  const write = (out: string) =>
    writeTestModel(out, {
      arch,
      type: typeof type === "string" ? GgmlType.Q4_K : type,
      dense: { mix: typeof type === "string" ? type : undefined, ...dense },
      seed: 1,
      vocabFrom: STORIES,
      ...SHAPES[arch],
    });
  return generatedReference(name, write, { kvCache });
};

export const DENSE_REFERENCE_MODELS: readonly ReferenceModel[] = [
  ...(["gemma3", "phi3"] as const).flatMap((arch) =>
    [GgmlType.F32, GgmlType.F16, "Q4_K_M" as const].map((t) => denseModel(arch, t))
  ),
  // Phi-3.5's LongRoPE, at a context past its original one: the long factors.
  denseModel("phi3", GgmlType.F32, { longRope: true }),
  // Final logit soft-capping at 4, where the logits' spread of ~3 reaches the cap's bend.
  denseModel("gemma3", GgmlType.F32, { logitSoftcap: 4 }),
  // llama.cpp's default f16 KV cache, which Grove's CPU engine keeps too, under the window.
  denseModel("gemma3", GgmlType.F32, { kvCache: "F16" }),
];

/**
 * A gemma3 model of the agreement models' shape and seed in F32 (layer 0 local with a window
 * of 8, layer 1 global) whose header says a training context of `contextLength`: the model of
 * the sliding-window cache tests.
 */
export function writeGemma3F32(path: string, contextLength: number): Promise<void> {
  return writeTestModel(path, {
    arch: "gemma3",
    type: GgmlType.F32,
    ...SHAPES.gemma3,
    seed: 1,
    vocabFrom: STORIES,
    contextLength,
  });
}
