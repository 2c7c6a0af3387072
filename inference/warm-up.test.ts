import assert from "node:assert/strict";
import type { BatchEngine, BatchRow } from "./batch.ts";
import type { Engine, Session } from "./engine.ts";
import { warmUpBatch, warmUpEngine } from "./warm-up.ts";

Deno.test("warmUpEngine: a long prompt, a short one, one token, on a session it then frees", async () => {
  const fed: number[][] = [];
  let destroyed = 0;
  const session = {
    position: 0,
    evaluate: () => {
      throw new Error("a device session is not called synchronously");
    },
    evaluateGreedy: (ids: readonly number[]) => (fed.push([...ids]), Promise.resolve(0)),
    rewind() {},
    destroy: () => destroyed++,
  } as Session & { destroy(): void };
  const engine = { ctxSize: 4096, config: { vocabSize: 10 }, createSession: () => session };
  await warmUpEngine(engine as unknown as Engine);
  assert.deepEqual(fed.map((ids) => ids.length), [16, 5, 1]);
  assert.ok(fed.flat().every((id) => id >= 0 && id < 10), "ids stay in the vocabulary");
  assert.equal(destroyed, 1);
});

Deno.test("warmUpBatch: fits the context and the step size, and always gives the slot back", async () => {
  const steps: BatchRow[][] = [];
  const released: number[] = [];
  const batch = {
    maxSlots: 2,
    ctxSize: 8, // room for the 5- and 1-token prompts only
    vocabSize: 32000,
    maxRows: 64,
    acquire: () => 1,
    release: (slot: number) => released.push(slot),
    step(rows: readonly BatchRow[]) {
      steps.push([...rows]);
      if (steps.length === 2) return Promise.reject(new Error("device lost"));
      return Promise.resolve(rows.map(() => new Float32Array(1)));
    },
  } as unknown as BatchEngine;
  await assert.rejects(() => warmUpBatch(batch), /device lost/);
  assert.deepEqual(steps.map((rows) => rows[0].tokens.length), [5, 1]);
  assert.ok(steps.every((rows) => rows[0].slot === 1));
  assert.deepEqual(released, [1]);
});
