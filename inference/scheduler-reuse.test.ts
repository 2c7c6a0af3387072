/**
 * Prompt reuse in the scheduler (prefix-cache.ts): a requester's next prompt that starts with
 * what its last sequence read takes that slot's cache and prefills only the rest, and its greedy
 * answer is the one a cold run gives; one requester's prefix never serves another; and the least
 * recently cached slot gives way when a sequence needs one.
 */
import assert from "node:assert/strict";
import { loadCpuModel } from "./cpu-engine.ts";
import { type BatchEngine, createCpuBatch } from "./batch.ts";
import type { GeneratedToken } from "./generate.ts";
import { createScheduler, type ScheduledResult } from "./scheduler.ts";
import { tokenizerFromMetadata } from "./tokenizer/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const model = await loadCpuModel({ path: STORIES, ctxSize: 256 });
const tokenizer = tokenizerFromMetadata(model.file.metadata);

/** A CPU batch that counts the prompt tokens its steps read. */
function countingBatch(maxSlots: number): BatchEngine & { read: number } {
  const batch = createCpuBatch({ ...model, maxSlots });
  const counted = {
    ...batch,
    read: 0,
    step(rows: Parameters<BatchEngine["step"]>[0]) {
      counted.read += rows.reduce((n, r) => n + r.tokens.length, 0);
      return batch.step(rows);
    },
  };
  return counted;
}

async function drain(it: AsyncGenerator<GeneratedToken, ScheduledResult>) {
  const ids: number[] = [];
  for (let s = await it.next();; s = await it.next()) {
    if (s.done) return { ids, result: s.value };
    ids.push(s.value.id);
  }
}

const GREEDY = { temperature: 0, maxTokens: 16 };
const FIRST = tokenizer.encode("Once upon a time, there was a little girl named Lily. She");
const OTHER = tokenizer.encode("The dog ran to the big tree and");
/** Text after an answer (no BOS): the next turn's new tokens. */
const MORE = tokenizer.encode("One day, she went to the park.").slice(1);

/** What a fresh scheduler (nothing cached) gives for `prompt`. */
async function cold(prompt: number[]) {
  const scheduler = createScheduler({
    batch: createCpuBatch({ ...model, maxSlots: 1 }),
    tokenizer,
  });
  return (await drain(scheduler.generate(prompt, GREEDY))).ids;
}

Deno.test("prompt reuse: a second turn reads only its new tokens and answers as a cold run", async () => {
  const batch = countingBatch(2);
  const scheduler = createScheduler({ batch, tokenizer, prefillChunk: 16 });
  const first = await drain(scheduler.generate(FIRST, { ...GREEDY, cacheKey: "A" }));
  assert.equal(first.result.cachedTokens, 0);
  assert.equal(first.result.finishReason, "length");
  // The cache holds the prompt and every pick but the last (never fed).
  const held = FIRST.length + first.ids.length - 1;
  const second = [...FIRST, ...first.ids, ...MORE];
  const readBefore = batch.read;
  const turn = await drain(scheduler.generate(second, { ...GREEDY, cacheKey: "A" }));
  assert.equal(turn.result.cachedTokens, held);
  assert.equal(turn.result.promptTokens, second.length);
  assert.equal(
    batch.read - readBefore,
    second.length - held + turn.ids.length - 1,
    "only the new tokens were prefilled",
  );
  assert.deepEqual(turn.ids, await cold(second));

  // The same prompt again: all of it but its last token (read again for the first pick's logits).
  const again = await drain(scheduler.generate(second, { ...GREEDY, cacheKey: "A" }));
  assert.equal(again.result.cachedTokens, second.length - 1);
  assert.deepEqual(again.ids, turn.ids);

  // A prompt sharing a part of the cache: rewound to the shared length.
  const part = [...FIRST.slice(0, 10), ...OTHER.slice(1)];
  const partial = await drain(scheduler.generate(part, { ...GREEDY, cacheKey: "A" }));
  assert.equal(partial.result.cachedTokens, 0, "under half of the cache: a free slot instead");
  const near = [...second.slice(0, second.length - 3), ...OTHER.slice(1)];
  const close = await drain(scheduler.generate(near, { ...GREEDY, cacheKey: "A" }));
  assert.equal(close.result.cachedTokens, second.length - 3);
  assert.deepEqual(close.ids, await cold(near));
  assert.deepEqual(scheduler.load(), { active: 0, queued: 0 });
});

Deno.test("prompt reuse: one requester's cached prefix never serves another", async () => {
  const scheduler = createScheduler({ batch: countingBatch(3), tokenizer });
  const first = await drain(scheduler.generate(FIRST, { ...GREEDY, cacheKey: "A" }));
  const second = [...FIRST, ...first.ids, ...MORE];
  const b = await drain(scheduler.generate(second, { ...GREEDY, cacheKey: "B" }));
  assert.equal(b.result.cachedTokens, 0, "B's prompt found A's cache");
  assert.deepEqual(b.ids, await cold(second));
  const none = await drain(scheduler.generate(second, GREEDY));
  assert.equal(none.result.cachedTokens, 0, "a request with no key reuses nothing");
  // A's prefix is still there for A, and B's for B.
  const a = await drain(scheduler.generate(second, { ...GREEDY, cacheKey: "A" }));
  assert.equal(a.result.cachedTokens, FIRST.length + first.ids.length - 1);
  const bAgain = await drain(scheduler.generate(second, { ...GREEDY, cacheKey: "B" }));
  assert.equal(bAgain.result.cachedTokens, second.length - 1);
});

Deno.test("prompt reuse: the least recently cached prefix gives its slot up", async () => {
  const scheduler = createScheduler({ batch: countingBatch(2), tokenizer });
  const run = (prompt: number[], key: string) =>
    drain(scheduler.generate(prompt, { ...GREEDY, maxTokens: 4, cacheKey: key }));
  await run(FIRST, "A");
  await run(FIRST, "B");
  await run(OTHER, "C"); // both slots hold a prefix: A's, the older, goes
  assert.equal((await run(FIRST, "B")).result.cachedTokens, FIRST.length - 1, "B's stayed");
  assert.equal((await run(FIRST, "A")).result.cachedTokens, 0, "A's was evicted");
  // That took C's slot (older than B's second), so C starts clean too.
  assert.equal((await run(OTHER, "C")).result.cachedTokens, 0);
});

Deno.test("prompt reuse: switched off, nothing is kept", async () => {
  const batch = countingBatch(2);
  const scheduler = createScheduler({ batch, tokenizer, promptReuse: false });
  await drain(scheduler.generate(FIRST, { ...GREEDY, cacheKey: "A" }));
  const again = await drain(scheduler.generate(FIRST, { ...GREEDY, cacheKey: "A" }));
  assert.equal(again.result.cachedTokens, 0);
});
