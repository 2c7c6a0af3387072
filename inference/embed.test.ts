import assert from "node:assert/strict";
import { cpuEngineFromModel, loadCpuModel } from "./cpu-engine.ts";
import { embedSequence, l2Normalize, pooledHidden, statedPooling } from "./embed.ts";
import { createRunState, embedTokens, forwardLayers, matMul, rmsNorm } from "./reference.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const model = await loadCpuModel({ path: STORIES, ctxSize: 64 });
const { config, weights } = model;
const TOKENS = [1, 400, 32, 77, 5, 19, 250, 300, 301, 12, 9, 44, 2];

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** Every position's output-norm row, by the reference pass in one go (no chunks). */
function normedRows(tokens: number[]): Float32Array[] {
  const state = createRunState(config, weights, 64);
  const hidden = embedTokens(config, weights, tokens);
  forwardLayers(config, weights, state, hidden, tokens.length);
  return tokens.map((_, t) => {
    const row = new Float32Array(config.dim);
    rmsNorm(row, hidden.subarray(t * config.dim), weights.outputNorm!, config.normEps);
    return row;
  });
}

Deno.test("last pooling is the normed row the head reads: its product with the head is the session's logits", async () => {
  const last = await pooledHidden(config, weights, TOKENS, { pooling: "last", chunk: 4 });
  assert.ok(maxDiff(last, normedRows(TOKENS).at(-1)!) < 1e-5);
  const logits = new Float32Array(config.vocabSize);
  matMul(weights.output!, last, 1, logits);
  const session = cpuEngineFromModel(model, STORIES).createSession().evaluate(TOKENS);
  assert.ok(maxDiff(logits, session) < 1e-4, `head(last) vs evaluate: ${maxDiff(logits, session)}`);
});

Deno.test("mean pooling averages every position's normed row; the result has length 1", async () => {
  const rows = normedRows(TOKENS);
  const mean = new Float32Array(config.dim);
  for (const r of rows) for (let i = 0; i < config.dim; i++) mean[i] += r[i] / rows.length;
  const got = await embedSequence(config, weights, TOKENS, { pooling: "mean", chunk: 5 });
  assert.ok(Math.abs(norm(got) - 1) < 1e-6);
  assert.ok(maxDiff(got, l2Normalize(mean)) < 1e-5);
});

Deno.test("chunks change nothing; the engine's embed is embedSequence; texts differ, repeats agree", async () => {
  const whole = await embedSequence(config, weights, TOKENS, { pooling: "last", chunk: 1000 });
  for (const chunk of [1, 3, 7]) {
    const got = await embedSequence(config, weights, TOKENS, { pooling: "last", chunk });
    assert.ok(maxDiff(got, whole) < 1e-5, `chunk ${chunk}`);
  }
  const engine = cpuEngineFromModel(model, STORIES);
  assert.deepEqual(await engine.embed!(TOKENS, "last"), await engine.embed!(TOKENS, "last"));
  assert.ok(maxDiff(await engine.embed!(TOKENS, "last"), whole) < 1e-5);
  const other = await engine.embed!([1, 9, 44, 2], "last");
  assert.ok(maxDiff(other, whole) > 1e-2, "different inputs, different vectors");
  // One token: mean and last are the same row.
  assert.deepEqual(await engine.embed!([1], "mean"), await engine.embed!([1], "last"));
});

Deno.test("refusals: no tokens, a token outside the vocabulary, a partial model", async () => {
  await assert.rejects(
    () => pooledHidden(config, weights, [], { pooling: "last" }),
    /at least one/,
  );
  await assert.rejects(
    () => pooledHidden(config, weights, [1, config.vocabSize], { pooling: "last" }),
    /outside the vocabulary/,
  );
  const stage = await loadCpuModel({ path: STORIES, ctxSize: 64, layerStart: 0, layerEnd: 2 });
  await assert.rejects(
    () => pooledHidden(stage.config, stage.weights, [1, 2], { pooling: "last" }),
    /whole model/,
  );
});

Deno.test("statedPooling reads llama.cpp's pooling_type: 1 mean, 3 last, anything else none", () => {
  assert.equal(statedPooling({ "qwen3.pooling_type": 3 }, "qwen3"), "last");
  assert.equal(statedPooling({ "llama.pooling_type": 1 }, "llama"), "mean");
  assert.equal(statedPooling({ "llama.pooling_type": 2 }, "llama"), undefined); // cls
  assert.equal(statedPooling({}, "llama"), undefined);
});
