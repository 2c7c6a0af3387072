/**
 * Reference models for RoPE scaling and the f16 KV cache, checked by tests/llama-agreement.test.ts
 * like the others (names end in f32: their arithmetic must agree to 1e-3):
 * - linear and YaRN scaling metadata on the llama (pairs) and qwen3 (NeoX) test models, with
 *   original contexts short enough that YaRN's ramp falls inside the rotated pairs, and one
 *   with a rope.scaling.attn_factor so ggml's mscale on cos/sin is not 1;
 * - the plain test models again with llama.cpp's default F16 KV cache, against Grove's f16 one.
 */
import { GgmlType } from "../../inference/mod.ts";
import type { ReferenceModel } from "./reference-models.ts";
import { type RopeScalingMeta, writeScaledTestModel } from "./test-models-context.ts";
import type { TestModelOptions } from "./test-models.ts";
import { STORIES } from "./fixtures.ts";
import { generatedReference } from "./reference-generated.ts";

const SHAPES = {
  llama: { dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512 },
  qwen3: { dim: 256, layers: 2, heads: 8, kvHeads: 4, headDim: 64, ffn: 512 },
} as const;

function contextModel(
  name: string,
  arch: "llama" | "qwen3",
  scaling: RopeScalingMeta | undefined,
  kvCache: "F32" | "F16" = "F32",
): ReferenceModel {
  const options: TestModelOptions = {
    arch,
    type: GgmlType.F32,
    seed: 1,
    vocabFrom: STORIES,
    ...SHAPES[arch],
  };
  return generatedReference(name, (out) => writeScaledTestModel(out, options, scaling), {
    kvCache,
  });
}

export const CONTEXT_REFERENCE_MODELS: readonly ReferenceModel[] = [
  contextModel("test-llama-linear-f32", "llama", { type: "linear", factor: 4 }),
  contextModel("test-qwen3-yarn-f32", "qwen3", { type: "yarn", factor: 4, originalContext: 128 }),
  contextModel("test-llama-yarn-f32", "llama", {
    type: "yarn",
    factor: 8,
    originalContext: 64,
    attnFactor: 1.25,
  }),
  contextModel("test-llama-kvf16-f32", "llama", undefined, "F16"),
  contextModel("test-qwen3-kvf16-f32", "qwen3", undefined, "F16"),
];
