import assert from "node:assert/strict";
import { createCpuEngine, loadCpuModel } from "./cpu-engine.ts";
import { type AcquireOptions, type BatchEngine, type BatchRow, createCpuBatch } from "./batch.ts";
import type { SampledToken } from "./sampler.ts";
import { generate, type GeneratedToken, type GenerateOptions } from "./generate.ts";
import { createScheduler, type ScheduledResult } from "./scheduler.ts";
import { eventually } from "../tests/support/poll.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const engine = await createCpuEngine({ path: STORIES, ctxSize: 96 });
const model = await loadCpuModel({ path: STORIES, ctxSize: 96 });

/** A CPU batch that records how many sequences each step carried. */
function recordingBatch(maxSlots: number): BatchEngine & { widths: number[] } {
  const batch = createCpuBatch({ ...model, maxSlots });
  const widths: number[] = [];
  return { ...batch, widths, step: (rows) => (widths.push(rows.length), batch.step(rows)) };
}

async function drain(it: AsyncGenerator<GeneratedToken, ScheduledResult>) {
  const ids: number[] = [];
  let text = "";
  for (let s = await it.next();; s = await it.next()) {
    if (s.done) return { ids, text: text + s.value.tail, result: s.value };
    ids.push(s.value.id);
    text += s.value.text;
  }
}

async function alone(prompt: string, options: GenerateOptions) {
  const ids: number[] = [];
  const run = generate(engine, engine.tokenizer.encode(prompt), options);
  for await (const t of run) ids.push(t.id);
  return ids;
}

const CASES: [string, GenerateOptions][] = [
  ["Once upon a time", { temperature: 0, maxTokens: 30 }],
  ["Lily went to the park", { temperature: 0.8, seed: 3, maxTokens: 24 }],
  ["The cat", { temperature: 0, maxTokens: 12 }],
  ["Tom had a big red ball and", { temperature: 1, topK: 20, seed: 11, maxTokens: 40 }],
];

Deno.test("scheduler: concurrent requests, joining at different times, match generate() alone", async () => {
  const batch = recordingBatch(4);
  const scheduler = createScheduler({ batch, tokenizer: engine.tokenizer, prefillChunk: 8 });
  const runs: Promise<{ ids: number[] }>[] = [];
  for (const [i, [prompt, options]] of CASES.entries()) {
    runs.push(drain(scheduler.generate(engine.tokenizer.encode(prompt), options)));
    // later requests join while the first ones are decoding
    if (i === 1) {
      await eventually(() => batch.widths.length > 0, { intervalMs: 1, what: "no step ran" });
    }
  }
  const got = await Promise.all(runs);
  for (const [i, [prompt, options]] of CASES.entries()) {
    assert.deepEqual(got[i].ids, await alone(prompt, options), `request ${i} (${prompt})`);
  }
  assert.ok(Math.max(...batch.widths) >= 3, `steps carried ${Math.max(...batch.widths)} sequences`);
  assert.deepEqual(scheduler.load(), { active: 0, queued: 0 });
});

Deno.test("scheduler: stop strings, max tokens and results are per request", async () => {
  const scheduler = createScheduler({ batch: recordingBatch(2), tokenizer: engine.tokenizer });
  const prompt = engine.tokenizer.encode("Once upon a time");
  const free = await alone("Once upon a time", { temperature: 0, maxTokens: 30 });
  const text = engine.tokenizer.decode(free);
  const stop = text.slice(10, 14);
  const [a, b] = await Promise.all([
    drain(scheduler.generate(prompt, { temperature: 0, stop: [stop] })),
    drain(scheduler.generate(prompt, { temperature: 0, maxTokens: 5 })),
  ]);
  assert.equal(a.result.finishReason, "stop");
  assert.ok(!a.text.includes(stop) && text.startsWith(a.text), `${a.text} / ${text}`);
  assert.equal(b.result.finishReason, "length");
  assert.equal(b.result.completionTokens, 5);
  assert.deepEqual(b.ids, free.slice(0, 5));
  assert.ok(b.result.admitted && b.result.prefillMs > 0 && b.result.promptTokens === prompt.length);
});

Deno.test("scheduler: an abort or a consumer that leaves frees the slot for the queue", async () => {
  const batch = recordingBatch(1);
  const scheduler = createScheduler({ batch, tokenizer: engine.tokenizer });
  const prompt = engine.tokenizer.encode("Once upon a time");
  const stopA = new AbortController();
  const a = scheduler.generate(prompt, { temperature: 0, maxTokens: 80, signal: stopA.signal });
  await a.next();
  const queuedStop = new AbortController();
  const queued = drain(scheduler.generate(prompt, { maxTokens: 5, signal: queuedStop.signal }));
  const b = scheduler.generate(prompt, { temperature: 0, maxTokens: 80 });
  const bFirst = b.next();
  await eventually(() => scheduler.load().queued === 2, { what: "the two never queued" });
  assert.deepEqual(scheduler.load(), { active: 1, queued: 2 });
  queuedStop.abort();
  const q = await queued;
  assert.equal(q.result.admitted, false);
  assert.equal(q.result.finishReason, "cancelled");
  assert.deepEqual(scheduler.load(), { active: 1, queued: 1 });

  stopA.abort();
  const rest = await drain(a);
  assert.equal(rest.result.finishReason, "cancelled");
  assert.ok(rest.result.completionTokens < 80);
  assert.equal((await bFirst).done, false); // b got the slot
  assert.deepEqual(scheduler.load(), { active: 1, queued: 0 });
  await b.return(undefined as never); // the client went away
  await eventually(() => scheduler.load().active === 0, { what: "the slot was never freed" });
  assert.deepEqual(scheduler.load(), { active: 0, queued: 0 });
  const c = await drain(scheduler.generate(prompt, { temperature: 0, maxTokens: 4 }));
  assert.equal(c.ids.length, 4);
});

Deno.test("scheduler: a failing step ends its sequences with the error, others go on", async () => {
  const batch = recordingBatch(2);
  let fail = true;
  const flaky: BatchEngine = {
    ...batch,
    step: (rows) =>
      fail ? (fail = false, Promise.reject(new Error("device lost"))) : batch.step(rows),
  };
  const scheduler = createScheduler({ batch: flaky, tokenizer: engine.tokenizer });
  const prompt = engine.tokenizer.encode("Hi");
  await assert.rejects(drain(scheduler.generate(prompt, { maxTokens: 3 })), /device lost/);
  assert.equal((await drain(scheduler.generate(prompt, { maxTokens: 3 }))).ids.length, 3);
  assert.throws(() => createScheduler({ batch, tokenizer: engine.tokenizer, maxConcurrent: 0 }));
});

/**
 * An engine that samples itself (a split model's last stage): it records the options each slot
 * was acquired with and every row, and picks token 100 + its own counter, with made-up logprobs.
 */
function samplingBatch() {
  const acquired: (AcquireOptions | undefined)[] = [];
  const rows: BatchRow[][] = [];
  const taken = new Set<number>();
  let picks = 0;
  const batch: BatchEngine<SampledToken | undefined> = {
    maxSlots: 2,
    ctxSize: 96,
    vocabSize: 512,
    maxRows: 512,
    samples: true,
    acquire(options) {
      const slot = [0, 1].find((s) => !taken.has(s));
      if (slot === undefined) return undefined;
      taken.add(slot);
      acquired[slot] = options;
      return slot;
    },
    release: (slot) => void taken.delete(slot),
    position: () => 0,
    rewind() {},
    step(step) {
      rows.push(step.map((r) => ({ ...r, tokens: [...r.tokens] })));
      return Promise.resolve(step.map((r) => {
        if (!r.sample) return undefined;
        const id = 100 + picks++;
        return { id, logprob: -id / 1000, topLogprobs: [{ id, logprob: -id / 1000 }] };
      }));
    },
  };
  return { batch, acquired, rows };
}

Deno.test("scheduler: an engine that samples gets each sampler at acquire and its picks are emitted", async () => {
  const { batch, acquired, rows } = samplingBatch();
  const scheduler = createScheduler({ batch, tokenizer: engine.tokenizer, prefillChunk: 4 });
  const prompt = [1, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const a = await drain(scheduler.generate(prompt, { temperature: 0.7, topK: 5, maxTokens: 3 }));
  assert.equal(acquired[0]?.sampler.temperature, 0.7);
  assert.equal(acquired[0]?.sampler.topK, 5);
  const seed = acquired[0]?.sampler.seed;
  assert.ok(Number.isInteger(seed) && seed! >= 0, `the seed is resolved: ${seed}`);
  // The prompt goes in chunks of 4: only the chunk that ends it asks for a pick.
  assert.deepEqual(rows.map((step) => step.map((r) => [r.tokens.length, r.sample])), [
    [[4, false]],
    [[4, false]],
    [[2, true]],
    [[1, true]],
    [[1, true]],
  ]);
  assert.deepEqual(rows.slice(3).map((step) => step[0].tokens[0]), [100, 101], "picks fed back");
  assert.deepEqual(a.ids, [100, 101, 102]);
  assert.equal(a.text, engine.tokenizer.decode([100, 101, 102]));
  assert.equal(a.result.finishReason, "length");

  const b = scheduler.generate(prompt.slice(0, 2), { seed: 42, maxTokens: 1, topLogprobs: 1 });
  const first = await b.next();
  assert.equal(acquired[0]?.sampler.seed, 42, "a given seed is passed as it is");
  assert.equal(acquired[0]?.sampler.topLogprobs, 1);
  assert.deepEqual(first.value, {
    id: 103,
    text: engine.tokenizer.decode([103]),
    logprob: -0.103,
    topLogprobs: [{ id: 103, logprob: -0.103 }],
  });
});
