/** The WebGPU engine against the CPU engine on the gemma3 and phi3 test models (see the harness). */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "../inference/webgpu/batch-forward.ts";
import { createWebGpuStage } from "../inference/webgpu/mod.ts";
import { createCpuEngine, createCpuStage } from "../inference/mod.ts";
import { DENSE_REFERENCE_MODELS } from "./support/reference-models-dense.ts";
import { createTestGpu } from "./support/gpu.ts";
import { checkAgreement, CTX } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-dense-" });

// The GPU engine's cache is f32: the f16-cache reference is the CPU engine's alone.
for (const model of DENSE_REFERENCE_MODELS.filter((m) => !m.kvCache)) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

Deno.test("webgpu batch on gemma3: stacked rows (the window in the ROWS kernels, the batch head's soft-capping) equal lone sessions", async () => {
  const model = DENSE_REFERENCE_MODELS.find((m) => m.name === "test-gemma3-softcap-f32")!;
  const path = await model.build(dir);
  const { engine, batch } = await createBatchedWebGpuEngine({
    path,
    ctxSize: CTX,
    gpu: await createTestGpu(),
    maxSlots: 2,
  });
  try {
    const prompts = [[1, 7, 42], [1, 300, 301, 12, 9]];
    const lone = prompts.map(() => engine.createSession());
    const slots = prompts.map(() => batch.acquire()!);
    const next = prompts.map((p) => p);
    let worst = 0;
    // 20 steps: both sequences run well past the window of 8.
    for (let step = 0; step < 20; step++) {
      const out = await batch.step(slots.map((slot, i) => ({ slot, tokens: next[i] })));
      for (const [i, session] of lone.entries()) {
        const want = await session.evaluateAsync!(next[i]);
        for (let j = 0; j < want.length; j++) {
          worst = Math.max(worst, Math.abs(out[i][j] - want[j]));
        }
        next[i] = [want.indexOf(Math.max(...want))];
      }
    }
    assert.ok(worst < 1e-4, `batched logits differ from lone sessions by ${worst}`);
  } finally {
    engine.close();
  }
});

/**
 * A WebGPU stage of layer 0 then a CPU stage of layer 1 against the whole CPU engine: each stage
 * holds its part of the architecture (gemma3's embedding scale, window and post-norms; phi3's
 * fused matrices and LongRoPE factors, each stage picking them by its own context).
 */
async function checkSplit(name: string) {
  const model = DENSE_REFERENCE_MODELS.find((m) => m.name === name)!;
  const path = await model.build(dir);
  const gpu = await createTestGpu();
  const first = await createWebGpuStage({ path, ctxSize: CTX, gpu, layerStart: 0, layerEnd: 1 });
  const second = await createCpuStage({
    path,
    ctxSize: CTX,
    kvType: "f32",
    layerStart: 1,
    layerEnd: 2,
  });
  const whole = await createCpuEngine({ path, ctxSize: CTX, kvType: "f32" });
  try {
    const cpuFirst = await createCpuStage({ path, ctxSize: CTX, layerStart: 0, layerEnd: 1 });
    const tokens = [1, 7, 42];
    const embedded = await first.embed(tokens);
    const cpuEmbedded = cpuFirst.embed(tokens);
    assert.ok(embedded.every((v, i) => v === cpuEmbedded[i]), "both stages embed alike");
    const [a, b] = [first.createSession(), second.createSession()];
    const session = whole.createSession();
    let next = tokens, worst = 0;
    for (let step = 0; step < 16; step++) {
      const hidden = await first.embed(next);
      await a.forward(hidden, next.length);
      b.forward(hidden, next.length);
      const got = second.logits(hidden, next.length - 1);
      const want = session.evaluate(next);
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      next = [want.indexOf(Math.max(...want))];
    }
    assert.ok(worst < 1e-3, `the split's logits differ from the CPU engine's by ${worst}`);
  } finally {
    first.close();
  }
}

for (const name of ["test-gemma3-f32", "test-phi3-longrope-f32"]) {
  Deno.test(`${name} split: a WebGPU stage then a CPU stage give the CPU engine's logits`, () =>
    checkSplit(name));
}

Deno.test("webgpu agreement (dense): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
