import assert from "node:assert/strict";
import { cpuEngineFromModel, loadCpuModel } from "../cpu-engine.ts";
import { engineFromModel, loadGpuModel } from "./webgpu-engine.ts";
import { gpuEmbed } from "./embed.ts";
import { createTestGpu } from "../../tests/support/gpu.ts";
import { STORIES } from "../../tests/support/fixtures.ts";

const TOKENS = [1, 400, 32, 77, 5, 19, 250, 300, 301, 12, 9, 44, 2];

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("WebGPU embeddings equal the CPU engine's, both poolings, in one chunk or many", async () => {
  const cpu = cpuEngineFromModel(await loadCpuModel({ path: STORIES, ctxSize: 64 }), STORIES);
  const model = await loadGpuModel({ path: STORIES, ctxSize: 64, gpu: await createTestGpu() });
  const engine = engineFromModel(model, STORIES);
  try {
    for (const pooling of ["last", "mean"] as const) {
      const want = await cpu.embed!(TOKENS, pooling);
      const whole = await engine.embed!(TOKENS, pooling);
      assert.ok(maxDiff(whole, want) < 1e-4, `${pooling}: ${maxDiff(whole, want)}`);
      // Chunks of 4 positions: the KV cache carries the earlier ones, as in a prefill.
      const chunked = await gpuEmbed({ ...model, maxBatch: 4 }, TOKENS, pooling);
      assert.ok(maxDiff(chunked, want) < 1e-4, `${pooling} in chunks: ${maxDiff(chunked, want)}`);
    }
    await assert.rejects(() => engine.embed!([1, 512], "last"), /outside the vocabulary/);
  } finally {
    engine.close();
  }
});
