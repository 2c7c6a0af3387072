import assert from "node:assert/strict";
import { openGguf } from "./gguf.ts";
import { configFromMetadata, modelConfigOf } from "./model-config.ts";
import { loadWeights, planTensors } from "./weights.ts";
import { swigluOai } from "./gpt-oss.ts";
import { attendRow } from "./attention.ts";
import { cpuEngineFromModel, createCpuStage, loadCpuModel } from "./cpu-engine.ts";
import { GPTOSS_REFERENCE_MODELS } from "../tests/support/reference-models-gptoss.ts";

const f = Math.fround;

Deno.test("swigluOai: x·σ(1.702x)·(y+1) with the gate clamped above at 7 and up to ±7", () => {
  const gate = Float32Array.of(-3, 0.5, 2, 7, 10, 1);
  const up = Float32Array.of(0.25, -2, 9, 1, -1, -12);
  const want = [...gate].map((g, i) => {
    const x = Math.min(g, 7), y = Math.min(Math.max(up[i], -7), 7);
    return f(f(x / f(1 + f(Math.exp(f(f(1.702) * -x))))) * f(y + 1));
  });
  swigluOai(gate, up, gate.length);
  assert.deepEqual([...gate], want);
  // Past the limits the output no longer moves: gate 10 acts as 7, up 9 as 7, up -12 as -7.
  assert.equal(want[4], f(f(7 / f(1 + f(Math.exp(f(f(1.702) * -7))))) * 0));
  assert.ok(want[5] < 0);
});

Deno.test("attendRow with sinks: each head's softmax counts the sink logit, which adds no value", () => {
  const config = { heads: 2, kvHeads: 1, headDim: 2, valueDim: 2 } as Parameters<
    typeof attendRow
  >[0];
  const q = Float32Array.of(1, 0, 0, 1);
  const keys = Float32Array.of(2, 0, 0, 2); // positions 0 and 1
  const values = Float32Array.of(1, 0, 0, 1);
  const sinks = Float32Array.of(0.5, 10);
  const att = new Float32Array(4);
  attendRow(config, q, 0, keys, values, 1, new Float32Array(2), att, 0, 0, sinks);
  const s = 2 / Math.sqrt(2);
  // Head 0: scores (s, 0) and the sink 0.5.
  const z0 = Math.exp(s) + 1 + Math.exp(0.5);
  assert.ok(Math.abs(att[0] - Math.exp(s) / z0) < 1e-6);
  assert.ok(Math.abs(att[1] - 1 / z0) < 1e-6);
  // Head 1: scores (0, s) and a sink of 10 that takes nearly all the weight.
  const z1 = 1 + Math.exp(s) + Math.exp(10);
  assert.ok(Math.abs(att[2] - 1 / z1) < 1e-6);
  assert.ok(Math.abs(att[3] - Math.exp(s) / z1) < 1e-6);
});

async function built(name: string, dir: string): Promise<string> {
  return await GPTOSS_REFERENCE_MODELS.find((m) => m.name === name)!.build(dir);
}

Deno.test("gpt-oss config and weights as llama.cpp's openai-moe loader reads them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-gpt-oss-" });
  try {
    const file = await openGguf(await built("test-gpt-oss-mxfp4_moe", dir));
    const config = modelConfigOf(file);
    assert.equal(config.arch, "gpt-oss");
    assert.equal(config.slidingWindow, 8);
    assert.deepEqual(config.localLayers, [true, false, true, false]);
    assert.equal(config.ropeStyle, "neox");
    assert.equal(config.ropeScaling.type, "yarn");
    assert.equal(config.ropeScaling.factor, 4);
    assert.equal(config.ropeScaling.originalContext, 128);
    assert.deepEqual(config.moe, {
      experts: 8,
      used: 4,
      expertFfn: 256,
      gating: "softmax-after-topk",
      normalizeTopK: false,
      activation: "swiglu-oai",
    });
    const names = planTensors(file, config).map((t) => t.name);
    assert.ok(!names.includes("blk.0.ffn_norm.weight"));
    assert.ok(!names.includes("blk.0.post_ffw_norm.weight"));
    const weights = await loadWeights(file, config);
    const layer = weights.layers[1];
    assert.equal(layer.sinks?.length, 8);
    assert.equal(layer.bo?.length, 256);
    assert.equal(layer.bq?.length, 8 * 64);
    assert.equal(layer.attnPostNorm, undefined, "post_attention_norm is the MoE's input norm");
    const postNorm = file.tensor("blk.1.post_attention_norm.weight")!;
    assert.equal(layer.ffnNorm.length, postNorm.dims[0]);
    assert.equal(layer.moe?.routerBias?.length, 8);
    assert.equal(layer.moe?.gateExpsBias?.length, 8 * 256);
    assert.equal(layer.moe?.downExpsBias?.length, 8 * 256);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Float64Array.from(logits, (v) => v - max - Math.log(sum));
}

/**
 * The reference model exercises every gpt-oss feature: without any one of them, Grove's
 * numbers leave llama.cpp's by more than the agreement test allows (a greedy token differs, or
 * a top-10 log-probability moves by more than the F16 tolerance of 0.05).
 */
Deno.test("each gpt-oss feature moves the reference model past the agreement test", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-gpt-oss-" });
  try {
    const name = "test-gpt-oss-f16";
    const path = await built(name, dir);
    const ref = JSON.parse(
      await Deno.readTextFile(new URL(`../tests/reference/${name}.json`, import.meta.url)),
    );
    const run = ref.runs[0];
    type Model = Awaited<ReturnType<typeof loadCpuModel>>;
    const layers = (m: Model) => m.weights.layers;
    const variants: [string, (m: Model) => void][] = [
      ["as is", () => {}],
      ["no sinks", (m) => layers(m).forEach((l) => delete l.sinks)],
      ["no sliding window", (m) => delete m.config.slidingWindow],
      ["no YaRN", (m) => {
        m.config.ropeScaling = { ...m.config.ropeScaling, type: "none", factor: 1, extFactor: 0 };
      }],
      ["SwiGLU", (m) => delete m.config.moe!.activation],
      ["softmax before top-k", (m) => m.config.moe!.gating = "softmax"],
      ["no expert biases", (m) => layers(m).forEach((l) => delete l.moe!.gateExpsBias)],
      ["no router bias", (m) => layers(m).forEach((l) => delete l.moe!.routerBias)],
      ["no output bias", (m) => layers(m).forEach((l) => delete l.bo)],
    ];
    for (const [what, change] of variants) {
      const model = await loadCpuModel({ path, ctxSize: 128, kvType: "f32" });
      change(model);
      const session = cpuEngineFromModel(model, path).createSession();
      let logits = session.evaluate(run.promptTokens);
      let same = 0, maxDiff = 0;
      for (const step of run.steps as { token: number; top: [number, number][] }[]) {
        const lp = logSoftmax(logits);
        let best = 0;
        for (let i = 1; i < lp.length; i++) if (lp[i] > lp[best]) best = i;
        if (best === step.token) same++;
        for (const [id, want] of step.top) maxDiff = Math.max(maxDiff, Math.abs(lp[id] - want));
        logits = session.evaluate([step.token]);
      }
      const agrees = same === run.steps.length && maxDiff < 0.05;
      console.log(
        `  ${what}: ${same}/40 greedy tokens, max |Δ logprob| ${maxDiff.toExponential(2)}`,
      );
      assert.equal(agrees, what === "as is", `${what}: ${same}/40 tokens, max |Δ| ${maxDiff}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gpt-oss split in two stages (a local and a global layer each) gives the whole model's logits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-gpt-oss-" });
  try {
    const path = await built("test-gpt-oss-mxfp4_moe", dir);
    const whole = cpuEngineFromModel(await loadCpuModel({ path, ctxSize: 64 }), path);
    const head = await createCpuStage({ path, ctxSize: 64, layerStart: 0, layerEnd: 2 });
    const tail = await createCpuStage({ path, ctxSize: 64, layerStart: 2, layerEnd: 4 });
    const session = whole.createSession(), s1 = head.createSession(), s2 = tail.createSession();
    let tokens = [1, 7, 42];
    // Past the sliding window of 8, so the stages' local layers drop positions too.
    for (let i = 0; i < 12; i++) {
      const want = session.evaluate(tokens);
      const hidden = head.embed(tokens);
      s1.forward(hidden, tokens.length);
      s2.forward(hidden, tokens.length);
      const got = tail.logits(hidden, tokens.length - 1);
      assert.deepEqual([...got], [...want], `step ${i}`);
      let best = 0;
      for (let j = 1; j < want.length; j++) if (want[j] > want[best]) best = j;
      tokens = [best];
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gpt-oss-20b's header (as llama.cpp's converter writes it) reads as its loader reads it", () => {
  const a = "gpt-oss";
  const config = configFromMetadata({
    "general.architecture": a,
    [`${a}.context_length`]: 131072,
    [`${a}.embedding_length`]: 2880,
    [`${a}.block_count`]: 24,
    [`${a}.feed_forward_length`]: 2880,
    [`${a}.attention.head_count`]: 64,
    [`${a}.attention.head_count_kv`]: 8,
    [`${a}.attention.key_length`]: 64,
    [`${a}.attention.value_length`]: 64,
    [`${a}.attention.layer_norm_rms_epsilon`]: 1e-5,
    [`${a}.attention.sliding_window`]: 128,
    [`${a}.rope.freq_base`]: 150000,
    [`${a}.rope.scaling.type`]: "yarn",
    [`${a}.rope.scaling.factor`]: 32,
    [`${a}.rope.scaling.original_context_length`]: 4096,
    [`${a}.expert_count`]: 32,
    [`${a}.expert_used_count`]: 4,
    [`${a}.expert_feed_forward_length`]: 2880,
  }, 201088);
  assert.equal(config.heads * config.headDim, 4096, "queries wider than the residual stream");
  assert.equal(config.ropeDim, 64);
  assert.equal(config.ropeStyle, "neox");
  assert.deepEqual(
    [config.ropeScaling.type, config.ropeScaling.factor, config.ropeScaling.originalContext],
    ["yarn", 32, 4096],
  );
  assert.equal(config.slidingWindow, 128);
  assert.deepEqual(config.localLayers, Array.from({ length: 24 }, (_, l) => l % 2 === 0));
  assert.equal(config.moe?.experts, 32);
  assert.equal(config.moe?.used, 4);
  assert.equal(config.moe?.expertFfn, 2880);
});
