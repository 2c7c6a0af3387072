// RoPE scaling read as llama.cpp reads it, and the rope that applies it against the YaRN formula
// in plain f64 (the agreement with llama.cpp itself: tests/reference/test-*-{linear,yarn}-f32).
import assert from "node:assert/strict";
import type { GgufValue } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import { rope } from "./rope.ts";
import {
  pairFrequencyScale,
  ropeConstants,
  type RopeScaling,
  ropeScalingFromMetadata,
  yarnRamp,
} from "./rope-scaling.ts";

const read = (meta: Record<string, GgufValue>) => ropeScalingFromMetadata(meta, "qwen3", 512);

Deno.test("rope scaling: none, linear and YaRN metadata as llama.cpp reads them", () => {
  assert.equal(read({}).type, "none", "no keys: linear with no factor, i.e. none");
  assert.equal(read({}).factor, 1);
  const linear = read({ "qwen3.rope.scaling.type": "linear", "qwen3.rope.scaling.factor": 4 });
  assert.deepEqual([linear.type, linear.factor, linear.extFactor], ["linear", 4, 0]);
  // A bare factor scales linearly (llama.cpp's default type), the old key too.
  assert.equal(read({ "qwen3.rope.scale_linear": 2 }).factor, 2);
  assert.equal(
    read({ "qwen3.rope.scaling.type": "none", "qwen3.rope.scaling.factor": 4 }).factor,
    1,
  );
  const yarn = read({
    "qwen3.rope.scaling.type": "yarn",
    "qwen3.rope.scaling.factor": 4,
    "qwen3.rope.scaling.original_context_length": 128,
  });
  assert.deepEqual([yarn.type, yarn.factor, yarn.originalContext, yarn.extFactor], [
    "yarn",
    4,
    128,
    1,
  ]);
  // llama.cpp's attn_factor (get_mscale) divided by what rope_yarn multiplies in itself: 1, so
  // cos and sin are scaled once by 1 + 0.1·ln(factor), as YaRN's attention factor is.
  assert.equal(yarn.attnFactor, 1);
  const c = ropeConstants(64, 1e6, yarn);
  assert.ok(Math.abs(c.mscale - (1 + 0.1 * Math.log(4))) < 1e-6, `${c.mscale}`);
  assert.equal(
    read({ "qwen3.rope.scaling.type": "yarn", "qwen3.rope.scaling.factor": 4 })
      .originalContext,
    512,
    "the original context defaults to the trained one",
  );
  assert.throws(() => read({ "qwen3.rope.scaling.type": "dynamic" }), /dynamic/);
});

Deno.test("rope scaling: YaRN's correction dims and ramp as ggml computes them", () => {
  const yarn: RopeScaling = read({
    "qwen3.rope.scaling.type": "yarn",
    "qwen3.rope.scaling.factor": 4,
    "qwen3.rope.scaling.original_context_length": 128,
  });
  const c = ropeConstants(64, 1e6, yarn);
  // 64·ln(128 / (32·2π)) / (2·ln 1e6) = -1.05 → floor, at least 0; with beta 1: 6.98 → ceil 7.
  assert.deepEqual([c.corrLow, c.corrHigh], [0, 7]);
  assert.equal(yarnRamp(0, 7, 0), 1);
  assert.equal(yarnRamp(0, 7, 7), 0);
  assert.ok(Math.abs(yarnRamp(0, 7, 3) - 4 / 7) < 1e-6);
  assert.equal(pairFrequencyScale(c, 0), 1, "the fastest pair keeps its angle");
  assert.equal(pairFrequencyScale(c, 20), 0.25, "slow pairs are interpolated");
});

Deno.test("rope scaling: the CPU rope turns by YaRN's angles, scaled by its mscale", () => {
  const ropeDim = 16, base = 10000, pos = 300;
  const scaling = ropeScalingFromMetadata(
    {
      "llama.rope.scaling.type": "yarn",
      "llama.rope.scaling.factor": 8,
      "llama.rope.scaling.original_context_length": 64,
      "llama.rope.scaling.attn_factor": 1.25,
    },
    "llama",
    512,
  );
  const config = {
    ropeDim,
    ropeBase: base,
    ropeStyle: "normal",
    ropeScale: 8,
    ropeScaling: scaling,
  } as ModelConfig;
  const c = ropeConstants(ropeDim, base, scaling);
  const v = new Float32Array(ropeDim);
  for (let i = 0; i < ropeDim; i += 2) v[i] = 1; // each pair (1, 0): cos and sin come out
  rope(v, 0, 1, ropeDim, pos, config);
  const mscale = 1.25 * (1 + 0.1 * Math.log(8));
  for (let i = 0; i < ropeDim / 2; i++) {
    const extrap = pos * Math.pow(base, (-2 * i) / ropeDim);
    const mix = yarnRamp(c.corrLow, c.corrHigh, i);
    const theta = (extrap / 8) * (1 - mix) + extrap * mix;
    // Angles of ~300 rad lose ~3e-5 to f32 steps, as ggml's do.
    assert.ok(Math.abs(v[2 * i] - mscale * Math.cos(theta)) < 1e-3, `pair ${i} cos`);
    assert.ok(Math.abs(v[2 * i + 1] - mscale * Math.sin(theta)) < 1e-3, `pair ${i} sin`);
  }
});
