/**
 * A MoE model's split mixing backends: a generated qwen3moe (6 layers, 8 experts with 2 used,
 * Q4_K_M mix) in three stages, the middle one on WebGPU, chained with two interleaved sequences
 * (stacked rows of both in one step, routed to different experts) against the whole CPU engine,
 * within the WebGPU agreement tests' tolerances (webgpu-agreement-harness.ts).
 */
import assert from "node:assert/strict";
import { createCpuEngine, GgmlType } from "../inference/mod.ts";
import { loadStages, runChain } from "./support/stage-chain.ts";
import { CHAIN_CTX } from "./support/stage-chain.ts";
import { writeTestModel } from "./support/test-models.ts";
import { STORIES } from "./support/fixtures.ts";
import { roundingTolerance, tracker } from "./webgpu-agreement-harness.ts";

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
    const stages = await loadStages(path, [[0, 2], [2, 4], [4, 6]], 1);
    const [cpuMiddle] = await loadStages(path, [[2, 4]]);
    const engine = await createCpuEngine({ path, ctxSize: CHAIN_CTX });
    const tolerance = roundingTolerance("test-qwen3moe-q4_k_m");
    const vsCpu = tracker(tolerance);
    let steps = 0;
    try {
      assert.equal(stages[1].info.backend, "webgpu");
      assert.equal(stages[1].info.weightBytes, cpuMiddle.info.weightBytes);
      steps = await runChain(stages, engine, 30, vsCpu.step);
    } finally {
      stages.forEach((s) => s.close());
      cpuMiddle.close();
    }
    const { maxLogprob, nearTies } = vsCpu.result();
    console.log(
      `  ${steps} steps; max |Δ logprob| ${maxLogprob.toExponential(2)}; near-ties: ${
        nearTies.join(", ") || "none"
      }`,
    );
    assert.ok(steps >= 40, `only ${steps} steps`);
    assert.ok(nearTies.length <= steps / 10, `${nearTies.length} near-ties`);
    assert.ok(maxLogprob < tolerance, `log-probabilities differ from the CPU's by ${maxLogprob}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
