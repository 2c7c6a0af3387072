import assert from "node:assert/strict";
import { createCpuEngine, loadCpuModel } from "./cpu-engine.ts";
import { createCpuBatch } from "./batch.ts";
import { createScheduler, MAX_WAITING, QueueFullError } from "./scheduler.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const model = await loadCpuModel({ path: STORIES, ctxSize: 64 });
const { tokenizer } = await createCpuEngine({ path: STORIES, ctxSize: 64 });

Deno.test("scheduler: past its bound the wait queue refuses with a typed busy error", async () => {
  assert.ok(MAX_WAITING >= 64, "the default line holds the bursts a mesh client sends");
  const batch = createCpuBatch({ ...model, maxSlots: 1 });
  const scheduler = createScheduler({ batch, tokenizer, maxWaiting: 2 });
  const prompt = tokenizer.encode("Once upon a time");
  const stops = [new AbortController(), new AbortController(), new AbortController()];
  const runs = stops.map((s) => scheduler.generate(prompt, { maxTokens: 40, signal: s.signal }));
  const firsts = runs.map((r) => r.next());
  await firsts[0]; // one runs, two wait
  assert.deepEqual(scheduler.load(), { active: 1, queued: 2 });

  const refused = scheduler.generate(prompt, { maxTokens: 4 }).next();
  await assert.rejects(refused, (err: unknown) => {
    assert.ok(err instanceof QueueFullError);
    assert.equal(err.code, "busy");
    assert.match(err.message, /busy: 2 requests are already waiting/);
    return true;
  });
  assert.deepEqual(scheduler.load(), { active: 1, queued: 2 }, "the refusal took nothing");

  stops[1].abort(); // one leaves the line: room for one more
  await firsts[1];
  const admitted = scheduler.generate(prompt, { maxTokens: 2 });
  const first = admitted.next();
  stops[0].abort();
  stops[2].abort();
  await Promise.all([firsts[2], ...runs.map((r) => r.return(undefined as never))]);
  assert.equal((await first).done, false, "a request that fits in the line is served");
  await admitted.return(undefined as never);
});

Deno.test("scheduler: with no line at all an idle node still serves", async () => {
  const batch = createCpuBatch({ ...model, maxSlots: 1 });
  const scheduler = createScheduler({ batch, tokenizer, maxWaiting: 0 });
  const run = scheduler.generate(tokenizer.encode("Hi"), { maxTokens: 2 });
  assert.equal((await run.next()).done, false);
  await assert.rejects(scheduler.generate(tokenizer.encode("Hi")).next(), QueueFullError);
  await run.return(undefined as never);
});
