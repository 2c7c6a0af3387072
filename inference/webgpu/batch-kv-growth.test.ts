/**
 * The batched WebGPU engine holds the KV cache of the slots in use, not of every slot from load
 * (issue 16's memory bound), and a slot acquired past them grows the cache without disturbing the
 * sequences already in it.
 */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "./batch-forward.ts";
import type { Session } from "../engine.ts";
import { createTestGpu } from "../../tests/support/gpu.ts";
import { STORIES } from "../../tests/support/fixtures.ts";

const CTX = 64;

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("WebGPU batch: the KV cache holds one slot of 8 until more are acquired, then grows keeping the first slot's rows", async () => {
  const { engine, batch } = await createBatchedWebGpuEngine({
    path: STORIES,
    ctxSize: CTX,
    gpu: await createTestGpu(),
    maxSlots: 8,
  });
  try {
    const { layers, kvHeads, headDim, valueDim } = engine.config;
    const slotBytes = layers * CTX * kvHeads * (headDim + valueDim) * 4;
    assert.equal(batch.kvSlotBytes, slotBytes);
    const lone: Session[] = [];
    let worst = 0;
    /** Steps `rows` batched and each through its own lone session; the logits must agree. */
    const step = async (rows: { slot: number; tokens: number[] }[]) => {
      const out = await batch.step(rows);
      for (const [j, r] of rows.entries()) {
        lone[r.slot] ??= engine.createSession();
        const want = await lone[r.slot].evaluateAsync!(r.tokens);
        worst = Math.max(worst, maxDiff(out[j], want));
        assert.equal(batch.position(r.slot), lone[r.slot].position);
      }
    };

    const a = batch.acquire()!;
    assert.equal(batch.kvBytes(), slotBytes, "one conversation holds one slot's cache");
    await step([{ slot: a, tokens: [1, 400, 32, 77, 5] }]);

    const b = batch.acquire()!, c = batch.acquire()!;
    assert.deepEqual([a, b, c], [0, 1, 2]);
    assert.equal(batch.kvBytes(), 3 * slotBytes, "three slots in use hold three");
    // Slot a's rows were copied into the grown buffers: its next tokens attend to them.
    await step([
      { slot: a, tokens: [19, 250] },
      { slot: b, tokens: [1, 300, 301, 12] },
      { slot: c, tokens: [1, 9] },
    ]);

    batch.release(b);
    assert.equal(batch.acquire(), b, "a freed slot is taken again");
    batch.rewind(b, 0);
    lone[b].rewind(0);
    assert.equal(batch.kvBytes(), 3 * slotBytes, "reusing a held slot does not grow");
    await step([{ slot: a, tokens: [44] }, { slot: b, tokens: [1, 2, 3] }, {
      slot: c,
      tokens: [7],
    }]);
    assert.ok(worst <= 1e-4, `batched logits differ from lone sessions by ${worst}`);
  } finally {
    engine.close();
  }
});
