/**
 * The WebGPU engine against the CPU engine, live, on stories260K and the
 * llama test models of every weight type (the qwen architectures are in
 * webgpu-agreement-qwen.test.ts; the shared checks in webgpu-agreement-harness.ts),
 * and a layer range split into two GPU stages against the whole GPU engine.
 */
import assert from "node:assert/strict";
import { GgmlType, SUPPORTED_WEIGHT_TYPES } from "../inference/mod.ts";
import { createWebGpuEngine, createWebGpuStage } from "../inference/webgpu/mod.ts";
import { createTestGpu } from "./support/gpu.ts";
import { REFERENCE_MODELS } from "./support/reference-models.ts";
import { agreementTests, CTX, runsOnWebGpu } from "./webgpu-agreement-harness.ts";
import { STORIES } from "./helpers.ts";

const models = REFERENCE_MODELS.filter((m) => runsOnWebGpu(m) && !m.name.startsWith("test-qwen"));
const { cleanUp } = agreementTests(models);

Deno.test("webgpu agreement runs the llama test model of every weight type the engines take", () => {
  const names = new Set(models.map((m) => m.name));
  for (const type of SUPPORTED_WEIGHT_TYPES) {
    const name = `test-llama-${GgmlType[type].toLowerCase()}`;
    assert.ok(names.has(name), `${name} is not among the WebGPU agreement models`);
  }
});

Deno.test("webgpu stages [0, 2) + [2, 5) give the whole engine's logits", async () => {
  const gpu = await createTestGpu();
  const whole = await createWebGpuEngine({ path: STORIES, ctxSize: CTX, gpu });
  const stages = await Promise.all(
    [[0, 2], [2, 5]].map(([layerStart, layerEnd]) =>
      createWebGpuStage({ path: STORIES, ctxSize: CTX, gpu, layerStart, layerEnd })
    ),
  );
  try {
    const session = whole.createSession();
    const sessions = stages.map((s) => s.createSession());
    // A prompt, then two decode steps: the stages' caches must grow like the engine's.
    for (const tokens of [[1, 274, 287, 269, 345], [400], [428]]) {
      const want = await session.evaluateAsync!(tokens);
      const hidden = await stages[0].embed(tokens);
      for (const s of sessions) await s.forward(hidden, tokens.length);
      const got = await stages[1].logits(hidden, tokens.length - 1);
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
      assert.ok(diff < 1e-5, `stage logits differ from the whole engine's by ${diff}`);
    }
    assert.equal(sessions[1].position, 7);
    await assert.rejects(() => stages[1].embed([1]), /not the first stage/);
    await assert.rejects(() => stages[0].logits(new Float32Array(64), 0), /not the last stage/);
  } finally {
    whole.close();
    stages.forEach((s) => s.close());
  }
});

cleanUp();
