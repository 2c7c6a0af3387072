/**
 * A MoE model's split mixing backends: a generated qwen3moe (6 layers, 8 experts with 2 used,
 * Q4_K_M mix) in three stages, the middle one on WebGPU, chained with two interleaved sequences
 * (stacked rows of both in one step, routed to different experts) against the whole CPU engine,
 * within the WebGPU agreement tests' tolerances (webgpu-agreement-harness.ts).
 */
import { GgmlType } from "../inference/mod.ts";
import { checkWebGpuMiddleStage } from "./support/stage-chain.ts";
import { writeTestModel } from "./support/test-models.ts";
import { STORIES } from "./support/fixtures.ts";

Deno.test("stage batch: a WebGPU MoE middle stage between CPU stages agrees with the CPU engine", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-stage-batch-moe-" });
  try {
    const path = `${dir}/test-qwen3moe-q4_k_m-6.gguf`;
    await writeTestModel(path, {
      arch: "qwen3moe",
      type: GgmlType.Q4_K,
      dim: 256,
      layers: 6,
      heads: 8,
      kvHeads: 4,
      headDim: 64,
      ffn: 512,
      moe: { experts: 8, used: 2, expertFfn: 256, mix: "Q4_K_M" },
      seed: 5,
      vocabFrom: STORIES,
    });
    await checkWebGpuMiddleStage(path, "test-qwen3moe-q4_k_m");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
