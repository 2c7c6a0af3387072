/**
 * The mixture-of-experts reference models (reference-models.ts lists them with the others):
 * qwen2moe and qwen3moe test models of 8 experts, 2 used, in F16 and in llama.cpp's Q4_K_M mix
 * (test-models-moe.ts says which tensor gets which type). Four layers, so the mix's
 * use_more_bits raises some layers' ffn_down_exps to Q6_K and leaves others Q4_K.
 */
import { GgmlType } from "../../inference/mod.ts";
import type { ReferenceModel } from "./reference-models.ts";
import type { MoeTestArch } from "./test-models-moe.ts";
import { type TestModelOptions, writeTestModel } from "./test-models.ts";
import { STORIES } from "./fixtures.ts";
import { generatedReference } from "./reference-generated.ts";

/** The shape of the small MoE reference models of `arch`. */
export function moeTestModelShape(arch: MoeTestArch): Omit<TestModelOptions, "type" | "seed"> {
  const moe = { experts: 8, used: 2, expertFfn: 256 };
  return arch === "qwen3moe"
    ? { arch, dim: 256, layers: 4, heads: 8, kvHeads: 4, headDim: 64, ffn: 512, moe }
    : {
      arch,
      dim: 256,
      layers: 4,
      heads: 4,
      kvHeads: 2,
      ffn: 512,
      moe: { ...moe, sharedFfn: 512 },
    };
}

const moeModel = (arch: MoeTestArch, mix: "f16" | "q4_k_m"): ReferenceModel => {
  const name = `test-${arch}-${mix}`;
  const shape = moeTestModelShape(arch);
  return generatedReference(name, (out) =>
    writeTestModel(out, {
      ...shape,
      type: mix === "f16" ? GgmlType.F16 : GgmlType.Q4_K,
      moe: { ...shape.moe!, mix: mix === "f16" ? undefined : "Q4_K_M" },
      seed: 1,
      vocabFrom: STORIES,
    }));
};

export const MOE_REFERENCE_MODELS: readonly ReferenceModel[] = [
  moeModel("qwen3moe", "f16"),
  moeModel("qwen3moe", "q4_k_m"),
  moeModel("qwen2moe", "f16"),
  moeModel("qwen2moe", "q4_k_m"),
];
