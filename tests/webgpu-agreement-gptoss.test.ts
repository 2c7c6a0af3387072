/**
 * The WebGPU engine against the CPU engine on the gpt-oss test models (F16 and the MXFP4_MOE
 * mix; see the harness): attention sinks, the sliding window, YaRN, the output bias, the
 * router's and experts' biases and swiglu_oai, all on the device; then the batched engine's
 * stacked rows and a WebGPU stage before a CPU stage.
 */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "../inference/webgpu/batch-forward.ts";
import { createWebGpuStage } from "../inference/webgpu/mod.ts";
import { createCpuEngine, createCpuStage, GgmlType } from "../inference/mod.ts";
import { GPTOSS_REFERENCE_MODELS } from "./support/reference-models-gptoss.ts";
import { quantizeGguf } from "./support/quantize-gguf.ts";
import { createTestGpu } from "./support/gpu.ts";
import { checkAgreement, CTX } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-gptoss-" });

// The GPU engine's cache is f32: the f16-cache reference is the CPU engine's alone.
for (const model of GPTOSS_REFERENCE_MODELS.filter((m) => !m.kvCache)) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

Deno.test("webgpu batch on gpt-oss: stacked rows (sinks and the window in the ROWS attention, each row's experts and biases) equal lone sessions", async () => {
  const path = await GPTOSS_REFERENCE_MODELS[1].build(dir);
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
    // 16 steps: both sequences run well past the window of 8.
    for (let step = 0; step < 16; step++) {
      const out = await batch.step(slots.map((slot, i) => ({ slot, tokens: next[i] })));
      for (const [i, session] of lone.entries()) {
        const want = await session.evaluateAsync!(next[i]);
        for (let j = 0; j < want.length; j++) {
          worst = Math.max(worst, Math.abs(out[i][j] - want[j]));
        }
        next[i] = [argmax(want)];
      }
    }
    assert.ok(worst < 1e-4, `batched logits differ from lone sessions by ${worst}`);
  } finally {
    engine.close();
  }
});

Deno.test("gpt-oss split: a WebGPU stage (layers 0-1) then a CPU stage (2-3) give the CPU engine's logits", async () => {
  // On F32 weights, so the CPU's activations are f32 like the GPU's.
  const path = `${dir}/gpt-oss-split-f32.gguf`;
  await quantizeGguf(await GPTOSS_REFERENCE_MODELS[0].build(dir), path, GgmlType.F32);
  const gpu = await createTestGpu();
  const first = await createWebGpuStage({ path, ctxSize: CTX, gpu, layerStart: 0, layerEnd: 2 });
  const second = await createCpuStage({
    path,
    ctxSize: CTX,
    kvType: "f32",
    layerStart: 2,
    layerEnd: 4,
  });
  const whole = await createCpuEngine({ path, ctxSize: CTX, kvType: "f32" });
  try {
    const [a, b] = [first.createSession(), second.createSession()];
    const session = whole.createSession();
    let next = [1, 7, 42], worst = 0;
    for (let step = 0; step < 16; step++) {
      const hidden = await first.embed(next);
      await a.forward(hidden, next.length);
      b.forward(hidden, next.length);
      const got = second.logits(hidden, next.length - 1);
      const want = session.evaluate(next);
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      next = [argmax(want)];
    }
    assert.ok(worst < 1e-3, `the split's logits differ from the CPU engine's by ${worst}`);
  } finally {
    first.close();
  }
});

Deno.test("webgpu agreement (gpt-oss): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
