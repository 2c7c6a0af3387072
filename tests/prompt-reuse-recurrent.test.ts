/**
 * Prompt reuse on a model with a recurrent state (qwen35moe's linear-attention layers), which
 * cannot be rewound short of its end (inference/recurrent-state.ts): a cached sequence serves
 * a prompt only when all of it is a prefix of that prompt; a prompt sharing a part of it starts
 * clean, and both answer as a cold run does.
 */
import assert from "node:assert/strict";
import { createBatchedCpuEngine, createScheduler } from "../inference/mod.ts";
import type { GeneratedToken } from "../inference/generate.ts";
import type { ScheduledResult } from "../inference/scheduler.ts";
import { QWEN35_TEST_SHAPE, writeQwen35Model } from "./support/test-models-qwen35.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-reuse-qwen35-" });
const path = `${dir}/qwen35moe.gguf`;
await writeQwen35Model(path, { ...QWEN35_TEST_SHAPE, mix: "Q4_K_M", seed: 1 });
const GREEDY = { temperature: 0, maxTokens: 8 };

async function drain(it: AsyncGenerator<GeneratedToken, ScheduledResult>) {
  const ids: number[] = [];
  for (let s = await it.next();; s = await it.next()) {
    if (s.done) return { ids, result: s.value };
    ids.push(s.value.id);
  }
}

Deno.test("prompt reuse, recurrent state: only a whole cached sequence serves; else clean", async () => {
  const { engine, batch } = await createBatchedCpuEngine({ path, ctxSize: 128, maxSlots: 1 });
  const { batch: coldBatch } = await createBatchedCpuEngine({ path, ctxSize: 128, maxSlots: 1 });
  const tokenizer = engine.tokenizer;
  const scheduler = createScheduler({ batch, tokenizer, prefillChunk: 4 });
  const cold = async (prompt: number[]) =>
    (await drain(createScheduler({ batch: coldBatch, tokenizer }).generate(prompt, GREEDY))).ids;
  const run = (prompt: number[]) => drain(scheduler.generate(prompt, { ...GREEDY, cacheKey: "A" }));
  const prompt = [1, 7, 42, 300, 5];
  const first = await run(prompt);
  const held = prompt.length + first.ids.length - 1;
  const next = [...prompt, ...first.ids, 99, 123];
  const turn = await run(next);
  assert.equal(turn.result.cachedTokens, held, "the whole cached sequence is the prompt's start");
  assert.deepEqual(turn.ids, await cold(next));

  // Shares the first 6 tokens of what the one slot holds: the state cannot go back there.
  const branch = [...next.slice(0, 6), 64, 8, 9];
  const other = await run(branch);
  assert.equal(other.result.cachedTokens, 0);
  assert.deepEqual(other.ids, await cold(branch));
  // The same prompt again would need a rewind by one token: clean as well.
  const same = await run(branch);
  assert.equal(same.result.cachedTokens, 0);
  assert.deepEqual(same.ids, other.ids);
  // A prompt the whole cache starts still reuses it.
  const grown = [...branch, ...same.ids, 77];
  const longer = await run(grown);
  assert.equal(longer.result.cachedTokens, branch.length + same.ids.length - 1);
  assert.deepEqual(longer.ids, await cold(grown));
});
