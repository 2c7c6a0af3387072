import assert from "node:assert/strict";
import { denseArchConfigOf } from "./dense-config.ts";

const shape = { dim: 640, heads: 4, headDim: 256, layers: 8 };

Deno.test("gemma3: the window pattern marks all but the last layer of each period local", () => {
  const c = denseArchConfigOf(
    {
      "gemma3.attention.sliding_window": 512,
      "gemma3.attention.sliding_window_pattern": 4,
      "gemma3.rope.freq_base_swa": 20000,
    },
    "gemma3",
    shape,
  );
  assert.equal(c.slidingWindow, 512);
  assert.deepEqual(c.localLayers, [true, true, true, false, true, true, true, false]);
  assert.equal(c.ropeBaseLocal, 20000);
  assert.equal(c.activation, "gelu");
  assert.equal(c.embedScale, Math.fround(Math.sqrt(640)));
  assert.equal(c.attentionScale, 1 / 16); // 1/sqrt(key width)
  assert.equal(c.logitSoftcap, undefined);
});

Deno.test("gemma3: without a pattern (or with an array, which llama.cpp ignores) the period is 6", () => {
  for (const pattern of [undefined, [true, false]]) {
    const c = denseArchConfigOf(
      {
        "gemma3.attention.sliding_window": 512,
        ...(pattern ? { "gemma3.attention.sliding_window_pattern": pattern } : {}),
      },
      "gemma3",
      shape,
    );
    assert.deepEqual(c.localLayers, [true, true, true, true, true, false, true, true]);
    assert.equal(c.ropeBaseLocal, 10000);
  }
});

Deno.test("gemma3: no window means global layers only; soft-capping is read when present", () => {
  const c = denseArchConfigOf({ "gemma3.final_logit_softcapping": 30 }, "gemma3", shape);
  assert.equal(c.slidingWindow, undefined);
  assert.equal(c.localLayers, undefined);
  assert.equal(c.logitSoftcap, 30);
});

Deno.test("gemma3 27B (62 layers) scales queries by dim / heads, as llama.cpp does", () => {
  const c = denseArchConfigOf({}, "gemma3", { dim: 5376, heads: 32, headDim: 128, layers: 62 });
  assert.equal(c.attentionScale, Math.fround(1 / Math.sqrt(168)));
});

Deno.test("phi3: the sliding window in the file is ignored (llama.cpp disables it)", () => {
  const c = denseArchConfigOf({ "phi3.attention.sliding_window": 2047 }, "phi3", shape);
  assert.deepEqual(c, { attentionScale: 1 / 16 });
  assert.deepEqual(denseArchConfigOf({}, "llama", shape), {});
});
