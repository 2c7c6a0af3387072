// Sliding-window layers keep only a ring of window + step rows positions: the numbers are those
// of a cache holding every position, the memory the planner counts, and a rewind whose window
// the ring no longer holds is refused (to 0 always works).
import assert from "node:assert/strict";
import { openGguf } from "./gguf.ts";
import { createCpuEngine, loadCpuModel } from "./cpu-engine.ts";
import {
  canRewindRunState,
  createRunState,
  growKvCache,
  kvCapacity,
  rewindRunState,
  type RunState,
} from "./attention.ts";
import { stepLogits } from "../tests/support/model-step.ts";
import { createCpuBatch } from "./batch.ts";
import { createSchedulerSlots } from "./scheduler-slots.ts";
import { kvBytesPerPosition, modelShapeOf, SCRATCH_ROWS, wholeModelBytes } from "./model-shape.ts";
import { chooseContextSize } from "./context-size.ts";
import { RewindRefusedError, slidingCacheSize, slidingWindowOf } from "./swa-cache.ts";
import { writeGemma3F32 } from "../tests/support/reference-models-dense.ts";
import { referenceModel } from "../tests/support/reference-models.ts";

const CTX = 1024;
const dir = await Deno.makeTempDir({ prefix: "grove-swa-" });
const path = `${dir}/gemma3.gguf`;
// The gemma3 agreement models' shape: layer 0 local (window 8), layer 1 global.
await writeGemma3F32(path, 131072);
const file = await openGguf(path);
const model = await loadCpuModel({ path, ctxSize: CTX });
const { config, weights } = model;
const WINDOW = slidingWindowOf(config);

const run = (state: RunState, tokens: readonly number[]) => stepLogits(model, state, tokens);

const tokens = Array.from({ length: 8 * WINDOW + 13 }, (_, i) => 1 + (i * 37) % 500);
/** Prefill chunks of 1, window - 1 and window + 3 rows in turn, to the end of `tokens`. */
function chunks(from = 0): number[][] {
  const sizes = [1, WINDOW - 1, WINDOW + 3];
  const out: number[][] = [];
  for (let at = from, i = 0; at < tokens.length; i++) {
    const n = Math.min(sizes[i % sizes.length], tokens.length - at);
    out.push(tokens.slice(at, at + n));
    at += n;
  }
  return out;
}

/** The whole-context cache: its local layer never wraps. */
const fullState = (kvType: "f16" | "f32") => createRunState(config, weights, CTX, kvType, CTX);

Deno.test("swa cache: the test model has a window of 8 on layer 0 only", () => {
  assert.equal(WINDOW, 8);
  const s = createRunState(config, weights, CTX, "f16", WINDOW + 3);
  assert.deepEqual(s.ringLayers, [true, false]);
  assert.equal(s.ringSize, 2 * WINDOW + 3);
  assert.equal(fullState("f16").ringSize, CTX);
});

for (const kvType of ["f16", "f32"] as const) {
  Deno.test(`swa cache (${kvType}): ${tokens.length} positions in chunks of 1, 7 and 11 rows give the full cache's logits bit for bit`, () => {
    const full = fullState(kvType);
    // Planned for the widest chunk, and planned for one row (the 11-row chunks widen it).
    const planned = createRunState(config, weights, CTX, kvType, WINDOW + 3);
    const narrow = createRunState(config, weights, CTX, kvType, 1);
    assert.equal(narrow.ringSize, WINDOW + 1);
    for (const chunk of chunks()) {
      const want = run(full, chunk);
      assert.deepEqual(run(planned, chunk), want, `at ${planned.position}`);
      assert.deepEqual(run(narrow, chunk), want, `at ${narrow.position}`);
    }
    assert.equal(planned.ringSize, 2 * WINDOW + 3, "a planned ring stays its size");
    assert.equal(narrow.ringSize, 2 * WINDOW + 3, "widened once for 11 rows");
    assert.equal(planned.keyCache[0].length, planned.ringSize * config.kvHeads * config.headDim);
    assert.ok(planned.ringFrom > 0, "the ring wrapped");
  });
}

Deno.test("swa cache: the local layer's bytes are the planner's window + step rows, the global layer's the context", () => {
  const shape = modelShapeOf(file, config, CTX);
  const perPosition = kvBytesPerPosition(config, "f16");
  const ring = slidingCacheSize(config, CTX, SCRATCH_ROWS);
  assert.equal(ring, WINDOW + SCRATCH_ROWS);
  assert.deepEqual(shape.layerStateBytes, [ring * perPosition, CTX * perPosition]);
  assert.equal(shape.kvBytesPerLayer, CTX * perPosition);
  // A whole context's positions in steps of SCRATCH_ROWS: the caches are what was planned.
  const state = createRunState(config, weights, CTX);
  for (let p = 0; p < CTX; p += SCRATCH_ROWS) growKvCache(config, state, p + SCRATCH_ROWS, p);
  assert.equal(kvCapacity(state), CTX);
  const bytes = (i: number) => state.keyCache[i].byteLength + state.valueCache[i].byteLength;
  assert.deepEqual([bytes(0), bytes(1)], shape.layerStateBytes);
  // Below the window + step rows the context bounds both.
  const small = modelShapeOf(file, config, 256);
  assert.deepEqual(small.layerStateBytes, [256 * perPosition, 256 * perPosition]);
});

Deno.test("swa cache: a rewind keeps its window or is refused with RewindRefusedError; 0 always works", () => {
  const full = fullState("f16");
  const ring = createRunState(config, weights, CTX, "f16", WINDOW + 3);
  for (const chunk of chunks()) [run(full, chunk), run(ring, chunk)];
  const end = tokens.length;
  assert.equal(ring.ringFrom, end - ring.ringSize);
  const lowest = ring.ringFrom + WINDOW - 1; // the earliest position whose window is held
  assert.ok(canRewindRunState(ring, lowest));
  assert.ok(!canRewindRunState(ring, lowest - 1));
  assert.ok(canRewindRunState(ring, 0) && canRewindRunState(ring, end));
  assert.ok(!canRewindRunState(ring, end + 1));
  assert.throws(() => rewindRunState(ring, lowest - 1), (e) => {
    assert.ok(e instanceof RewindRefusedError);
    assert.match(e.message, /sliding-window layers hold only positions .*rewind to 0/);
    return true;
  });
  assert.equal(ring.position, end, "a refused rewind leaves the sequence as it was");
  // Back to the lowest position held, then on: the full cache's numbers again.
  rewindRunState(ring, lowest);
  rewindRunState(full, lowest);
  for (const chunk of chunks(lowest)) assert.deepEqual(run(ring, chunk), run(full, chunk));
  // To 0, then the whole sequence again from a clean start.
  rewindRunState(ring, 0);
  rewindRunState(full, 0);
  assert.equal(ring.ringFrom, 0);
  for (const chunk of chunks()) assert.deepEqual(run(ring, chunk), run(full, chunk));
});

Deno.test("swa cache: the CPU batch engine's rewind refuses a lost window the same way, and to 0 works", async () => {
  const batch = createCpuBatch({ config, weights, ctxSize: CTX, maxSlots: 1, maxRows: 64 });
  const slot = batch.acquire()!;
  for (let at = 0; at < 640; at += 64) await batch.step([{ slot, tokens: tokens.slice(0, 64) }]);
  assert.equal(batch.position(slot), 640);
  // The ring holds 8 + 512 positions (createRunStateSlots plans SCRATCH_ROWS per step).
  assert.throws(() => batch.rewind(slot, 100), RewindRefusedError);
  batch.rewind(slot, 600);
  assert.equal(batch.position(slot), 600);
  batch.rewind(slot, 0);
  assert.equal(batch.position(slot), 0);
});

Deno.test("swa cache: the default context counts the local layer at its ring, so a budget holds about twice the context", () => {
  // The same model with every layer global: what the budget gave before the rings.
  const allGlobal = { ...config, slidingWindow: undefined };
  const need = (c: typeof config, ctx: number) => wholeModelBytes(modelShapeOf(file, c, ctx));
  const budget = { bytes: need(allGlobal, 32768), source: "--max-memory" };
  assert.equal(chooseContextSize(file, allGlobal, budget).ctxSize, 32768);
  const { ctxSize } = chooseContextSize(file, config, budget);
  assert.ok(need(config, ctxSize) <= budget.bytes, "it fits");
  assert.ok(need(config, ctxSize + 256) > budget.bytes, "256 more would not");
  assert.ok(ctxSize > 1.8 * 32768, `${ctxSize}`);
});

// The agreement models' recorded runs (prompt and llama.cpp's 40 greedy tokens) through rings of
// the window + 1 row (widened by the prompt's step): the full cache's logits, bit for bit, and so
// the numbers tests/llama-agreement.test.ts checks against llama.cpp.
for (const name of ["test-gemma3-kvf16-f32", "test-gpt-oss-kvf16-f16"]) {
  Deno.test(`swa cache: ${name}'s recorded run through a ring of window + 1 equals the full cache`, async () => {
    const reference = referenceModel(name)!;
    const ref = JSON.parse(await Deno.readTextFile(`tests/reference/${name}.json`));
    const m = await loadCpuModel({ path: await reference.build(dir), ctxSize: 128 });
    const window = slidingWindowOf(m.config);
    assert.ok(window > 0 && window < 16, `window ${window}`);
    const step = (state: RunState, ids: number[]) => stepLogits(m, state, ids);
    for (const r of ref.runs) {
      const full = createRunState(m.config, m.weights, 128, "f16", 128);
      const ring = createRunState(m.config, m.weights, 128, "f16", 1);
      const feeds: number[][] = [
        r.promptTokens,
        ...r.steps.map((s: { token: number }) => [s.token]),
      ];
      for (const ids of feeds) assert.deepEqual(step(ring, ids), step(full, ids));
      assert.ok(ring.position > 4 * window && ring.ringFrom > 0, "past the window, wrapped");
      assert.equal(ring.ringSize, window + r.promptTokens.length);
    }
  });
}

Deno.test("swa cache: the scheduler starts a slot clean when its window is gone, and still reuses one that holds it", async () => {
  const batch = createCpuBatch({ config, weights, ctxSize: CTX, maxSlots: 1, maxRows: 64 });
  const slots = createSchedulerSlots<Item>(batch, 1, { reuse: true });
  const long = Array.from({ length: 640 }, (_, i) => 1 + (i * 13) % 500);
  const ask = (tokens: number[]): Item => ({ slot: -1, prefix: { owner: "A", tokens } });
  const runTo = async (item: Item) => {
    assert.deepEqual(slots.admit([item]), [item]);
    const from = item.cached!;
    for (let at = from; at < long.length; at += 64) {
      await batch.step([{
        slot: item.slot,
        tokens: long.slice(at, Math.min(at + 64, long.length)),
      }]);
    }
    slots.release(item, { owner: "A", tokens: long });
  };
  await runTo(ask(long));
  // 100 shared (no other slot, so it is tried): the ring holds only the last 520 of 640.
  const far = ask([...long.slice(0, 100), 7, 7]);
  assert.deepEqual(slots.admit([far]), [far]);
  assert.equal(far.cached, 0, "the refused rewind left the slot clean");
  assert.equal(batch.position(far.slot), 0);
  slots.release(far);
  await runTo(ask(long));
  // 630 shared: held, and partial reuse is still on after the refusal above.
  const near = ask([...long.slice(0, 630), 7, 7]);
  assert.deepEqual(slots.admit([near]), [near]);
  assert.equal(near.cached, 630);
  assert.equal(batch.position(near.slot), 630);
});

type Item = { slot: number; prefix?: { owner: string; tokens: number[] }; cached?: number };

Deno.test("swa cache: a CPU session reads a long prompt in steps of SCRATCH_ROWS, its logits those of one whole step", async () => {
  const engine = await createCpuEngine({ path, ctxSize: CTX });
  const prompt = Array.from({ length: SCRATCH_ROWS + 90 }, (_, i) => 1 + (i * 29) % 500);
  const whole = createRunState(config, weights, CTX, "f16", CTX);
  assert.deepEqual(engine.createSession().evaluate(prompt), run(whole, prompt));
});
