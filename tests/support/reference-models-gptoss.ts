/**
 * The gpt-oss reference models (reference-models.ts lists them with the others): test models of
 * 8 experts, 4 used (gpt-oss-20b routes to 4 of 32), 4 layers (two sliding-window, two global),
 * GQA with a query width other than dim (as gpt-oss's 64 heads of 64 over 2880), in F16 and in
 * the MXFP4_MOE mix gpt-oss GGUFs ship (test-models-gptoss.ts says which tensor gets which type),
 * the F16 model also under an f16 KV cache.
 */
import { GgmlType } from "../../inference/mod.ts";
import type { ReferenceModel } from "./reference-models.ts";
import { type TestModelOptions, writeTestModel } from "./test-models.ts";
import { STORIES } from "./fixtures.ts";
import { generatedReference } from "./reference-generated.ts";

export const GPTOSS_TEST_SHAPE: Omit<TestModelOptions, "type" | "seed"> = {
  arch: "gpt-oss",
  dim: 256,
  layers: 4,
  heads: 8,
  kvHeads: 2,
  headDim: 64,
  ffn: 256,
  gptOss: { experts: 8, used: 4, expertFfn: 256 },
};

const gptOssModel = (mix: "f16" | "mxfp4_moe", kvCache?: "F16"): ReferenceModel => {
  const name = `test-gpt-oss-${kvCache ? "kvf16-" : ""}${mix}`;
  const write = (out: string) =>
    writeTestModel(out, {
      ...GPTOSS_TEST_SHAPE,
      type: mix === "f16" ? GgmlType.F16 : GgmlType.Q8_0,
      gptOss: { ...GPTOSS_TEST_SHAPE.gptOss!, mix: mix === "f16" ? undefined : "MXFP4_MOE" },
      seed: 2,
      vocabFrom: STORIES,
    });
  return generatedReference(name, write, { kvCache });
};

export const GPTOSS_REFERENCE_MODELS: readonly ReferenceModel[] = [
  gptOssModel("f16"),
  gptOssModel("mxfp4_moe"),
  // Under llama.cpp's default f16 KV cache, as a node serves it (sinks and f16 probabilities).
  gptOssModel("f16", "F16"),
];
