import assert from "node:assert/strict";
import { createCpuEngine } from "./cpu-engine.ts";
import { loadCpuModel } from "./cpu-engine.ts";
import { type BatchEngine, createCpuBatch, sessionBatch } from "./batch.ts";
import type { Engine, Session } from "./engine.ts";
import { createBatchedWebGpuEngine } from "./webgpu/batch-forward.ts";
import { createTestGpu } from "../tests/support/gpu.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { argmax } from "../tests/support/logits.ts";

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Three sequences at different positions: A and B prefill together, C joins
 * after two steps with a prefill chunk beside their decode tokens, B leaves
 * early. Every logit vector is compared with a lone session fed the same tokens.
 */
async function checkAgainstSessions(engine: Engine, batch: BatchEngine, tol: number) {
  const prompts = [[1, 400, 32, 77, 5], [1, 19, 250], [1, 300, 301, 12, 9, 44, 2]];
  const lone: Session[] = prompts.map(() => engine.createSession());
  const evalLone = async (i: number, tokens: number[]) =>
    lone[i].evaluateAsync ? await lone[i].evaluateAsync!(tokens) : lone[i].evaluate(tokens);
  const slot = [batch.acquire()!, batch.acquire()!, -1];
  const next: number[][] = [prompts[0], prompts[1], []];
  let worst = 0;
  for (let step = 0; step < 8; step++) {
    if (step === 2) {
      slot[2] = batch.acquire()!;
      next[2] = prompts[2];
    }
    if (step === 5) {
      batch.release(slot[1]);
      slot[1] = -1;
    }
    const live = [0, 1, 2].filter((i) => slot[i] >= 0);
    const out = await batch.step(live.map((i) => ({ slot: slot[i], tokens: next[i] })));
    for (const [j, i] of live.entries()) {
      const want = await evalLone(i, next[i]);
      worst = Math.max(worst, maxDiff(out[j], want));
      assert.equal(batch.position(slot[i]), lone[i].position);
      next[i] = [argmax(want)];
    }
  }
  assert.ok(worst <= tol, `batched logits differ from lone sessions by ${worst}`);
  return worst;
}

Deno.test("CPU batch: logits equal lone sessions at different positions, join and leave", async () => {
  const model = await loadCpuModel({ path: STORIES, ctxSize: 64 });
  const batch = createCpuBatch({ ...model, maxSlots: 3 });
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 64 });
  const worst = await checkAgainstSessions(engine, batch, 1e-5);
  console.log(`  max |batched - lone| logit: ${worst.toExponential(2)}`);
});

Deno.test("session batch: any engine's sessions as slots give the same logits", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 64 });
  assert.equal(await checkAgainstSessions(engine, sessionBatch(engine, 3), 0), 0);
});

Deno.test("CPU batch: slots are checked, full slots say so, a released slot starts empty", async () => {
  const model = await loadCpuModel({ path: STORIES, ctxSize: 16 });
  const batch = createCpuBatch({ ...model, maxSlots: 2, maxRows: 8 });
  const a = batch.acquire()!, b = batch.acquire()!;
  assert.equal(batch.acquire(), undefined);
  await batch.step([{ slot: a, tokens: [1, 2, 3] }]);
  assert.equal(batch.position(a), 3);
  await assert.rejects(batch.step([{ slot: a, tokens: [1] }, { slot: a, tokens: [2] }]), /twice/);
  await assert.rejects(batch.step([{ slot: b, tokens: new Array(9).fill(1) }]), /exceed 8/);
  await assert.rejects(batch.step([{ slot: b, tokens: [] }]), /no tokens/);
  batch.release(a);
  await assert.rejects(batch.step([{ slot: a, tokens: [1] }]), /not in use/);
  assert.equal(batch.acquire(), a);
  assert.equal(batch.position(a), 0);
  await assert.rejects(
    batch.step([{ slot: a, tokens: new Array(8).fill(1) }, {
      slot: b,
      tokens: [1],
    }]),
    /exceed 8/,
  );
  batch.rewind(a, 0);
  await batch.step([{ slot: b, tokens: new Array(8).fill(1) }]);
  await batch.step([{ slot: b, tokens: new Array(8).fill(1) }]);
  await assert.rejects(batch.step([{ slot: b, tokens: [1] }]), /context full/);
});

/** stories260K on the test adapter, 3 slots of 64 positions. */
async function storiesGpuBatch(chunkRows?: number) {
  const gpu = await createTestGpu();
  const loaded = await createBatchedWebGpuEngine({
    path: STORIES,
    ctxSize: 64,
    gpu,
    maxSlots: 3,
    chunkRows,
  });
  return { gpu, ...loaded };
}

Deno.test("WebGPU batch: logits equal the GPU engine's lone sessions within 1e-4", async () => {
  const { gpu, engine, batch } = await storiesGpuBatch();
  try {
    const worst = await checkAgainstSessions(engine, batch, 1e-4);
    console.log(`  max |batched - lone| logit on ${gpu.adapterName}: ${worst.toExponential(2)}`);
    await assert.rejects(batch.step([{ slot: 1, tokens: [1] }]), /not in use/); // released
  } finally {
    engine.close();
  }
});

Deno.test("WebGPU batch: a step of more rows than its scratch runs in chunks, the same logits", async () => {
  // Chunks of 4 rows: the first step's 8 prompt rows end two sequences in its second chunk; the
  // third step's 9 rows (two decode rows, a 7-token prompt) leave a chunk where none ends.
  const { engine, batch } = await storiesGpuBatch(4);
  try {
    assert.equal(batch.maxRows, 512);
    await checkAgainstSessions(engine, batch, 1e-4);
    // A step of 3 chunks waits for the device once.
    const slot = batch.acquire()!;
    let maps = 0;
    const map = GPUBuffer.prototype.mapAsync;
    GPUBuffer.prototype.mapAsync = function (...args: Parameters<typeof map>) {
      maps++;
      return map.apply(this, args);
    };
    try {
      await batch.step([{ slot, tokens: [1, 2, 3, 4, 5, 6, 7, 8, 9] }]);
    } finally {
      GPUBuffer.prototype.mapAsync = map;
    }
    assert.equal(maps, 1);
  } finally {
    engine.close();
  }
});
