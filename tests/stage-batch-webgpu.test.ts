/**
 * A split plan mixing backends (issue 11): the generated Q4_K model of 6 layers in three stages,
 * the middle one on WebGPU, chained with two interleaved sequences against the whole CPU engine,
 * within the WebGPU agreement tests' tolerances (webgpu-agreement-harness.ts): the GPU keeps
 * activations in f32 where the CPU rounds them, so only near-ties may flip.
 */
import assert from "node:assert/strict";
import { checkWebGpuMiddleStage, writeSplitTestModel } from "./support/stage-chain.ts";

Deno.test("stage batch: a WebGPU middle stage between CPU stages agrees with the CPU engine", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-stage-batch-webgpu-" });
  try {
    const path = `${dir}/test-llama-q4_k-6.gguf`;
    await writeSplitTestModel(path);
    await checkWebGpuMiddleStage(path, "test-llama-q4_k", async (gpuMiddle, cpuMiddle) => {
      assert.equal(gpuMiddle.info.bytesRead, cpuMiddle.info.bytesRead);
      await assert.rejects(() => gpuMiddle.embed([1]), /only the first stage/);
      await assert.rejects(() => gpuMiddle.logits(new Float32Array(256), [0]), /only the last/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
