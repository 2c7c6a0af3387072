import assert from "node:assert/strict";
import type { BatchEngine, BatchRow } from "./batch.ts";
import type { Engine, Session } from "./engine.ts";
import { loadStageBatch } from "./stage-batch.ts";
import { warmUpBatch, warmUpEngine, warmUpStage } from "./warm-up.ts";
import { STORIES } from "../tests/support/fixtures.ts";

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

Deno.test("warmUpStage: runs stage 0's embedding and the last stage's head, then frees the slot", async () => {
  for (const [start, end] of [[0, 2], [2, 5]]) {
    const stage = await loadStageBatch({ path: STORIES, layerStart: start, layerEnd: end });
    const calls: string[] = [];
    const spy = new Proxy(stage, {
      get(target, key) {
        const v = Reflect.get(target, key);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => (calls.push(String(key)), v.apply(target, args));
      },
    });
    await warmUpStage(spy);
    assert.equal(calls.includes("embed"), start === 0);
    assert.equal(calls.includes("logits"), end === 5);
    assert.equal(calls.filter((c) => c === "forward").length, 3);
    assert.ok(calls.at(-1) === "release");
    assert.equal(stage.acquire(), 0, "the slot is free again, its cache reset");
    assert.equal(stage.position(0), 0);
    stage.close();
  }
});
