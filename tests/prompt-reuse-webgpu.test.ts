/**
 * Prompt reuse on the WebGPU batch engine (its KV cache per slot): a second turn takes the slot
 * its first left, rewound to the shared length, and gives the greedy tokens a cold run of the same
 * prompt gives on the same engine.
 */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "../inference/webgpu/batch-forward.ts";
import { createScheduler } from "../inference/scheduler.ts";
import type { GeneratedToken } from "../inference/generate.ts";
import type { ScheduledResult } from "../inference/scheduler.ts";
import { STORIES } from "./support/fixtures.ts";
import { createTestGpu } from "./support/gpu.ts";

async function drain(it: AsyncGenerator<GeneratedToken, ScheduledResult>) {
  const ids: number[] = [];
  for (let s = await it.next();; s = await it.next()) {
    if (s.done) return { ids, result: s.value };
    ids.push(s.value.id);
  }
}

Deno.test("prompt reuse on WebGPU: a second turn reads only its new tokens, as a cold run answers", async () => {
  const { engine, batch } = await createBatchedWebGpuEngine({
    path: STORIES,
    ctxSize: 256,
    maxSlots: 2,
    gpu: await createTestGpu(),
  });
  try {
    const scheduler = createScheduler({ batch, tokenizer: engine.tokenizer, prefillChunk: 16 });
    const greedy = { temperature: 0, maxTokens: 16 };
    const prompt = engine.tokenizer.encode("Once upon a time, there was a little girl named Lily.");
    const first = await drain(scheduler.generate(prompt, { ...greedy, cacheKey: "A" }));
    const more = engine.tokenizer.encode("She liked to play.").slice(1);
    const next = [...prompt, ...first.ids, ...more];
    const turn = await drain(scheduler.generate(next, { ...greedy, cacheKey: "A" }));
    assert.equal(turn.result.cachedTokens, prompt.length + first.ids.length - 1);
    // The same prompt from a requester with nothing cached: read whole, on the other slot.
    const cold = await drain(scheduler.generate(next, { ...greedy, cacheKey: "B" }));
    assert.equal(cold.result.cachedTokens, 0);
    assert.deepEqual(turn.ids, cold.ids);
  } finally {
    engine.close();
  }
});
