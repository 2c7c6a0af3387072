/**
 * A split plan mixing backends (issue 11): the generated Q4_K model of 6 layers in three stages,
 * the middle one on WebGPU, chained with two interleaved sequences against the whole CPU engine,
 * within the WebGPU agreement tests' tolerances (webgpu-agreement-harness.ts): the GPU keeps
 * activations in f32 where the CPU rounds them, so only near-ties may flip.
 */
import assert from "node:assert/strict";
import { createCpuEngine } from "../inference/mod.ts";
import { CHAIN_CTX, loadStages, runChain, writeSplitTestModel } from "./support/stage-chain.ts";
import { roundingTolerance, tracker } from "./webgpu-agreement-harness.ts";

Deno.test("stage batch: a WebGPU middle stage between CPU stages agrees with the CPU engine", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-stage-batch-webgpu-" });
  try {
    const path = `${dir}/test-llama-q4_k-6.gguf`;
    await writeSplitTestModel(path);
    const stages = await loadStages(path, [[0, 2], [2, 4], [4, 6]], 1);
    const [cpuMiddle] = await loadStages(path, [[2, 4]]);
    const engine = await createCpuEngine({ path, ctxSize: CHAIN_CTX });
    const tolerance = roundingTolerance("test-llama-q4_k");
    const vsCpu = tracker(tolerance);
    let steps = 0;
    try {
      assert.equal(stages[1].info.backend, "webgpu");
      assert.equal(stages[1].info.weightBytes, cpuMiddle.info.weightBytes);
      assert.equal(stages[1].info.bytesRead, cpuMiddle.info.bytesRead);
      await assert.rejects(() => stages[1].embed([1]), /only the first stage/);
      await assert.rejects(() => stages[1].logits(new Float32Array(256), [0]), /only the last/);
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
