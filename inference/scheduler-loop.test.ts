// The stepping loop against a fake engine that records each step's rows and always picks token 1
// ("a"), with plain sequences: what one batched step carries, and when a sequence sits out.
import assert from "node:assert/strict";
import type { BatchRow } from "./batch.ts";
import { createStepLoop, MAX_AHEAD } from "./scheduler-loop.ts";
import { createSequence, type Ending, type Sequence } from "./scheduler-sequence.ts";
import { createSchedulerSlots } from "./scheduler-slots.ts";
import { eventually } from "../tests/support/poll.ts";

const tokenizer = {
  createDecoder: () => ({ push: (id: number) => String.fromCharCode(96 + id), flush: () => "" }),
  isEndOfGeneration: (id: number) => id === 0,
};

function setup(prefillChunk: number, maxTokens = 100) {
  const steps: BatchRow[][] = [];
  const taken = new Set<number>();
  const batch = {
    maxSlots: 4,
    maxRows: 512,
    acquire() {
      for (let i = 0; i < 4; i++) if (!taken.has(i)) return taken.add(i), i;
      return undefined;
    },
    release: (slot: number) => void taken.delete(slot),
    step(rows: readonly BatchRow[]) {
      steps.push(rows.map((r) => ({ slot: r.slot, tokens: [...r.tokens] })));
      return Promise.resolve(rows.map(() => Float32Array.from([0, 10, 0])));
    },
  };
  const slots = createSchedulerSlots<Sequence>(batch);
  const queue: Sequence[] = [];
  const ended: [Sequence, Ending][] = [];
  const loop = createStepLoop({ prefillChunk }, {
    batch,
    tokenizer,
    queue,
    slots,
    finish(seq, end) {
      slots.release(seq);
      ended.push([seq, end]);
    },
  });
  const request = (prompt: number[]) => {
    const seq = createSequence(prompt, { temperature: 0 }, maxTokens, tokenizer);
    queue.push(seq);
    return seq;
  };
  return { loop, steps, request, ended, slots };
}

Deno.test("step loop: one step feeds every running sequence, prompts within the chunk", async () => {
  const { loop, steps, request } = setup(4);
  const a = request([1, 2, 3]);
  const b = request([4, 5, 6, 7, 8]);
  assert.equal(await loop.step(), true);
  // Both joined; the chunk budget of 4 prefills all of a and the start of b.
  assert.deepEqual(steps[0], [{ slot: 0, tokens: [1, 2, 3] }, { slot: 1, tokens: [4] }]);
  assert.deepEqual(a.events.map((e) => e.text), ["a"], "a's prompt is in: its first token");
  assert.equal(await loop.step(), true);
  // a decodes beside the rest of b's prompt.
  assert.deepEqual(steps[1], [{ slot: 0, tokens: [1] }, { slot: 1, tokens: [5, 6, 7, 8] }]);
  assert.equal(await loop.step(), true);
  assert.deepEqual(steps[2], [{ slot: 0, tokens: [1] }, { slot: 1, tokens: [1] }]);
  assert.deepEqual([a.events.length, b.events.length], [3, 2]);
});

Deno.test("step loop: a sequence whose reader is behind sits out; none movable, no step", async () => {
  const { loop, steps, request } = setup(64);
  const a = request([1]);
  const b = request([2]);
  while (a.events.length < MAX_AHEAD) assert.equal(await loop.step(), true);
  b.events.length = 0; // b's reader took everything
  assert.equal(await loop.step(), true);
  assert.deepEqual(steps.at(-1), [{ slot: 1, tokens: [1] }], "only b stepped");
  b.events.push(...a.events); // now b's reader is behind too
  assert.equal(await loop.step(), false);
  a.events.shift(); // a's reader takes one
  assert.equal(await loop.step(), true);
  assert.deepEqual(steps.at(-1), [{ slot: 0, tokens: [1] }]);
});

Deno.test("step loop: a kick steps until its sequences end or their reader left; slots come free", async () => {
  const { loop, request, ended, slots } = setup(64, 3);
  const a = request([1, 2]);
  const b = request([3]);
  const gone = request([4]);
  assert.equal(await loop.step(), true);
  gone.gone = true; // its reader left while it ran: it ends at the next step
  loop.kick();
  await eventually(() => ended.length === 3, { what: `ended: ${ended.length} of 3` });
  assert.deepEqual(ended.map(([s, e]) => [s, e.reason]), [
    [gone, "cancelled"],
    [a, "length"],
    [b, "length"],
  ]);
  assert.deepEqual(a.events.map((e) => e.text).join(""), "aaa");
  assert.equal(slots.running.length, 0);
});

Deno.test("step loop: prompt chunks shrink so a step stays within maxStepMs of the engine's time", async () => {
  let clock = 0;
  const steps: number[][] = [];
  const taken = new Set<number>();
  const batch = {
    maxSlots: 4,
    maxRows: 512,
    acquire() {
      for (let i = 0; i < 4; i++) if (!taken.has(i)) return taken.add(i), i;
      return undefined;
    },
    release: (slot: number) => void taken.delete(slot),
    step(rows: readonly BatchRow[]) {
      steps.push(rows.map((r) => r.tokens.length));
      clock += 100 * rows.reduce((n, r) => n + r.tokens.length, 0); // 100 ms a token
      return Promise.resolve(rows.map(() => Float32Array.from([0, 10, 0])));
    },
  };
  const slots = createSchedulerSlots<Sequence>(batch);
  const queue: Sequence[] = [];
  const loop = createStepLoop({ prefillChunk: 64, now: () => clock }, {
    batch,
    tokenizer,
    queue,
    slots,
    finish: (seq) => slots.release(seq),
  });
  const first = createSequence([1, 2, 3], { temperature: 0 }, 100, tokenizer);
  queue.push(first);
  assert.equal(await loop.step(), true); // learns what a token costs: 100 ms
  const long = Array.from({ length: 64 }, () => 5);
  queue.push(createSequence(long, { temperature: 0 }, 100, tokenizer));
  while (await loop.step()) first.events.length = 0; // its reader keeps up
  // Later steps: 10 tokens of 100 ms at most, the decode row's included, so the 64-token prompt
  // goes in 9 at a time beside the other sequence's decode row (64 at once without the bound).
  const later = steps.slice(1);
  assert.ok(later.every((s) => s.reduce((a, b) => a + b) <= 10), JSON.stringify(steps));
  assert.deepEqual(later.slice(0, 7), Array(7).fill([1, 9]));
});
