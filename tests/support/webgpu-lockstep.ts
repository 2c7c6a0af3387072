/**
 * The WebGPU agreement tests' lockstep checks that do not depend on the
 * architecture: the batched engine's stacked rows against lone sessions, and
 * a WebGPU stage before a CPU stage against the whole CPU engine.
 */
import assert from "node:assert/strict";
import { createCpuEngine, createCpuStage } from "../../inference/mod.ts";
import { createBatchedWebGpuEngine } from "../../inference/webgpu/batch-forward.ts";
import { createWebGpuStage } from "../../inference/webgpu/mod.ts";
import { createTestGpu } from "./gpu.ts";
import { argmax } from "./logits.ts";

/** The first index of the largest value. */

/**
 * Two prompts of different lengths as two slots of one batched engine, fed
 * their lone sessions' greedy tokens for `steps` steps: every logit within
 * 1e-4 of the lone session's.
 */
export async function checkBatchAgainstLone(path: string, ctxSize: number, steps: number) {
  const { engine, batch } = await createBatchedWebGpuEngine({
    path,
    ctxSize,
    gpu: await createTestGpu(),
    maxSlots: 2,
  });
  try {
    const prompts = [[1, 7, 42], [1, 300, 301, 12, 9]];
    const lone = prompts.map(() => engine.createSession());
    const slots = prompts.map(() => batch.acquire()!);
    const next = prompts.map((p) => p);
    let worst = 0;
    for (let step = 0; step < steps; step++) {
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
}

export interface SplitCheck {
  path: string;
  ctxSize: number;
  /** The WebGPU stage holds layers [0, split), the CPU stage [split, layers). */
  split: number;
  layers: number;
  /** Also assert the WebGPU stage embeds as a CPU first stage does. */
  embedsAlike?: boolean;
}

/**
 * The two stages fed the whole CPU engine's greedy tokens for 16 steps (both
 * caches f32): the CPU stage's logits within 1e-3 of the whole engine's.
 */
export async function checkSplitAgainstWhole(
  { path, ctxSize, split, layers, embedsAlike }: SplitCheck,
) {
  const gpu = await createTestGpu();
  const first = await createWebGpuStage({ path, ctxSize, gpu, layerStart: 0, layerEnd: split });
  const second = await createCpuStage({
    path,
    ctxSize,
    kvType: "f32",
    layerStart: split,
    layerEnd: layers,
  });
  const whole = await createCpuEngine({ path, ctxSize, kvType: "f32" });
  try {
    const tokens = [1, 7, 42];
    if (embedsAlike) {
      const cpuFirst = await createCpuStage({ path, ctxSize, layerStart: 0, layerEnd: split });
      const embedded = await first.embed(tokens);
      const cpuEmbedded = cpuFirst.embed(tokens);
      assert.ok(embedded.every((v, i) => v === cpuEmbedded[i]), "both stages embed alike");
    }
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
      next = [argmax(want)];
    }
    assert.ok(worst < 1e-3, `the split's logits differ from the CPU engine's by ${worst}`);
  } finally {
    first.close();
  }
}
