import assert from "node:assert/strict";
import { attendRow } from "./attention.ts";
import { attentionWindow, ropeConfigOf } from "./gemma3.ts";
import type { ModelConfig } from "./model-config.ts";
import { createRng } from "./rng.ts";

const config = {
  heads: 2,
  kvHeads: 1,
  headDim: 4,
  valueDim: 4,
  ropeBase: 1e6,
  ropeScale: 8,
  ropeScaling: { type: "linear", factor: 8 },
  slidingWindow: 3,
  localLayers: [true, false],
  ropeBaseLocal: 10000,
} as unknown as ModelConfig;

function random(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.nextFloat() * 2 - 1);
}

Deno.test("attendRow with a window sees exactly the last `window` positions, its own included", () => {
  const pos = 9, window = 3, kvWidth = 4;
  const q = random(8, 1), keys = random((pos + 1) * kvWidth, 2);
  const values = random((pos + 1) * kvWidth, 3);
  const windowed = new Float32Array(8);
  attendRow(config, q, 0, keys, values, pos, new Float32Array(pos + 1), windowed, 0, window);
  // The same query over a cache holding only positions pos-2..pos, with no window.
  const from = (pos - window + 1) * kvWidth;
  const alone = new Float32Array(8);
  const [k, v] = [keys.slice(from), values.slice(from)];
  attendRow(config, q, 0, k, v, window - 1, new Float32Array(window), alone, 0);
  assert.deepEqual(windowed, alone);
  const all = new Float32Array(8);
  attendRow(config, q, 0, keys, values, pos, new Float32Array(pos + 1), all, 0);
  assert.notDeepEqual(all, windowed);
});

Deno.test("local layers take the window and their own RoPE base, without scaling", () => {
  assert.equal(attentionWindow(config, 0), 3);
  assert.equal(attentionWindow(config, 1), 0);
  const local = ropeConfigOf(config, 0);
  assert.equal(local.ropeBase, 10000);
  assert.equal(local.ropeScale, 1);
  assert.equal((local as { ropeScaling?: { type: string } }).ropeScaling?.type, "none");
  assert.equal(
    ropeConfigOf(config, 0),
    local,
    "one config object per model (rope.ts caches by it)",
  );
  assert.equal(ropeConfigOf(config, 1), config);
});
