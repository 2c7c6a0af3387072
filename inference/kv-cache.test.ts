// The CPU KV cache: f16 as ggml rounds (to nearest, ties to even), grown in doublings as
// positions fill without changing a single number the model computes.
import assert from "node:assert/strict";
import { loadCpuModel } from "./cpu-engine.ts";
import {
  createRunState,
  growKvCache,
  KV_FIRST_POSITIONS,
  kvCacheBytes,
  kvCapacity,
} from "./attention.ts";
import { stepLogits } from "../tests/support/model-step.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const model = await loadCpuModel({ path: STORIES, ctxSize: 1000 });
const { config, weights } = model;

const run = (state: ReturnType<typeof createRunState>, tokens: number[]) =>
  stepLogits(model, state, tokens);

Deno.test("kv cache: starts at 256 positions and doubles up to the context, no further", () => {
  const state = createRunState(config, weights, 1000);
  assert.equal(kvCapacity(state), KV_FIRST_POSITIONS);
  const perPosition = config.layers * 2 * config.kvHeads * config.headDim * 2; // f16
  assert.equal(kvCacheBytes(state), 256 * perPosition);
  growKvCache(config, state, 257);
  assert.equal(kvCapacity(state), 512);
  growKvCache(config, state, 600);
  assert.equal(kvCapacity(state), 1000, "capped at the context");
  assert.equal(kvCacheBytes(state), 1000 * perPosition);
  assert.throws(() => growKvCache(config, state, 1001), /past the context of 1000/);
});

Deno.test("kv cache: growing as positions fill gives the numbers of a cache grown up front", () => {
  const tokens = Array.from({ length: 300 }, (_, i) => 1 + (i * 37) % 500);
  const grown = createRunState(config, weights, 1000);
  const upFront = createRunState(config, weights, 1000);
  growKvCache(config, upFront, 1000);
  // 200 then 100 more: the second step crosses 256 and grows the cache mid-sequence.
  run(grown, tokens.slice(0, 200));
  run(upFront, tokens.slice(0, 200));
  assert.deepEqual(run(grown, tokens.slice(200)), run(upFront, tokens.slice(200)));
  assert.equal(kvCapacity(grown), 512);
});

Deno.test("kv cache: f16 keeps keys and values as ggml's fp32→fp16 rounds them", () => {
  const f16 = createRunState(config, weights, 64);
  const f32 = createRunState(config, weights, 64, "f32");
  assert.ok(f16.keyCache[0] instanceof Float16Array);
  assert.ok(f32.keyCache[0] instanceof Float32Array);
  // Ties go to even; past 65504 is infinity.
  const c = f16.keyCache[0];
  c.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 1e-8]);
  assert.deepEqual([...c.subarray(0, 4)], [1, 1 + 2 ** -9, Infinity, 0]);
  // The same sequence through both: close, not equal (the f16 cache is llama.cpp's default).
  const tokens = [1, 274, 287, 269, 345, 400];
  const a = run(f16, tokens), b = run(f32, tokens);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  assert.ok(diff > 0 && diff < 0.1, `${diff}`);
});
