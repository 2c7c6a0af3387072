import assert from "node:assert/strict";
import { createRng, randomSeed, rngFromState } from "./rng.ts";

Deno.test("xoshiro128** matches the reference outputs for state [1,2,3,4]", () => {
  const rng = rngFromState([1, 2, 3, 4]);
  assert.deepEqual([rng.nextUint32(), rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [
    11520,
    0,
    5927040,
    70819200,
  ]);
});

Deno.test("same seed gives the same sequence", () => {
  const a = createRng(42);
  const b = createRng(42);
  for (let i = 0; i < 1000; i++) assert.equal(a.nextUint32(), b.nextUint32());
  assert.equal(a.seed, 42);
});

Deno.test("nearby and large seeds give different sequences", () => {
  const first = (seed: number) => {
    const rng = createRng(seed);
    return [rng.nextUint32(), rng.nextUint32(), rng.nextUint32()].join(",");
  };
  const seen = new Set([0, 1, 2, 3, 2 ** 32, 2 ** 32 + 1, 2 ** 52, -1].map(first));
  assert.equal(seen.size, 8);
});

Deno.test("no seed picks a random one and reports it", () => {
  const a = createRng();
  const b = createRng();
  assert.ok(Number.isInteger(a.seed) && a.seed >= 0 && a.seed < 2 ** 32);
  assert.notEqual(`${a.seed}:${a.nextUint32()}`, `${b.seed}:${b.nextUint32()}`);
  const replay = createRng(a.seed);
  const again = createRng(a.seed);
  assert.equal(replay.nextUint32(), again.nextUint32());
  assert.ok(randomSeed() >= 0);
});

Deno.test("nextFloat is uniform in [0, 1)", () => {
  const rng = createRng(7);
  const bins = new Array(10).fill(0);
  const n = 50_000;
  for (let i = 0; i < n; i++) {
    const x = rng.nextFloat();
    assert.ok(x >= 0 && x < 1);
    bins[Math.floor(x * 10)]++;
  }
  // Each bin expects 5000 with sd ~67; 5 sd is a loose, non-flaky bound.
  for (const count of bins) assert.ok(Math.abs(count - n / 10) < 350, `bin count ${count}`);
});

Deno.test("a non-finite seed is rejected", () => {
  assert.throws(() => createRng(Number.NaN), /finite/);
});

Deno.test("state() is the state now: a generator made from it goes on with the same numbers", () => {
  const rng = createRng(5);
  for (let i = 0; i < 7; i++) rng.nextFloat();
  const state = rng.state();
  assert.equal(state.length, 4);
  assert.ok(state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32), `${state}`);
  const copy = rngFromState(state);
  for (let i = 0; i < 100; i++) assert.equal(copy.nextUint32(), rng.nextUint32());
  assert.deepEqual(rngFromState([1, 2, 3, 4]).state(), [1, 2, 3, 4]);
});
