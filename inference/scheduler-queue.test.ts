import assert from "node:assert/strict";
import { createCpuEngine, loadCpuModel } from "./cpu-engine.ts";
import { createCpuBatch } from "./batch.ts";
import { createScheduler, MAX_WAITING, QueueFullError } from "./scheduler.ts";
import { createWaitQueue } from "./scheduler-queue.ts";
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

// The wait queue alone: plain items, no model.

function queueOf(maxWaiting: number) {
  const aborted: string[] = [];
  const queue = createWaitQueue<string>({ maxWaiting, onAbort: (item) => aborted.push(item) });
  return { queue, aborted };
}

Deno.test("wait queue: first come first served, bounded, with free slots counted as room", () => {
  const { queue } = queueOf(2);
  let made = 0;
  const make = (name: string) => () => (made++, name);
  queue.join(make("a"), 0);
  queue.join(make("b"), 0);
  assert.throws(() => queue.join(make("c"), 0), (err: unknown) => {
    assert.ok(err instanceof QueueFullError);
    assert.equal(err.waiting, 2);
    return true;
  });
  assert.equal(made, 2, "a refused item is never made");
  queue.join(make("c"), 1); // a slot about to take from the line makes room
  assert.equal(queue.length, 3);
  assert.deepEqual([queue.shift(), queue.shift(), queue.shift(), queue.shift()], [
    "a",
    "b",
    "c",
    undefined,
  ]);
  assert.throws(() => createWaitQueue({ maxWaiting: -1, onAbort() {} }), /maxWaiting must be ≥ 0/);
});

Deno.test("wait queue: an abort while waiting takes the item out at once, not after it left", () => {
  const { queue, aborted } = queueOf(4);
  const stops = [new AbortController(), new AbortController(), new AbortController()];
  for (const [i, name] of ["a", "b", "c"].entries()) queue.join(() => name, 0, stops[i].signal);
  stops[1].abort();
  assert.deepEqual(aborted, ["b"]);
  assert.equal(queue.length, 2);

  assert.equal(queue.shift(), "a");
  stops[0].abort(); // already out of the line (running): not the queue's to end
  assert.equal(queue.leave("c"), true);
  assert.equal(queue.leave("c"), false);
  stops[2].abort();
  assert.deepEqual(aborted, ["b"]);
  assert.equal(queue.length, 0);
});

Deno.test("wait queue: a signal aborted before joining ends the item as it joins", () => {
  const { queue, aborted } = queueOf(0);
  const item = queue.join(() => "late", 1, AbortSignal.abort());
  assert.equal(item, "late");
  assert.deepEqual(aborted, ["late"]);
  assert.equal(queue.length, 0);
});
