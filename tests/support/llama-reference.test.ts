// Runs llama.cpp live on stories260K: the harness must reproduce the known greedy story, and the
// committed reference file must still be what the harness produces.

import assert from "node:assert/strict";
import { openGguf } from "../../inference/mod.ts";
import { llamaReference } from "./llama-reference.ts";
import { makeReference, type ReferenceFile, referencePath, sha256File } from "./make-references.ts";
import { referenceModel } from "./reference-models.ts";
import { STORIES } from "./fixtures.ts";

// From the fixtures' README.md (in GROVE_MODEL_PATH): greedy decoding from BOS, checked by two
// other programs.
const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in " +
  "the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.";

// SentencePiece pieces with ▁ for spaces; enough to read this model's output, nothing more.
async function decoder(path: string): Promise<(ids: number[]) => string> {
  const { metadata } = await openGguf(path);
  const pieces = metadata["tokenizer.ggml.tokens"];
  if (!Array.isArray(pieces)) throw new Error(`${path} has no tokenizer.ggml.tokens`);
  return (ids) => ids.map((id) => String(pieces[id])).join("").replaceAll("\u2581", " ").trim();
}

function logSumExp(values: Float32Array): number {
  const max = Math.max(...values);
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

Deno.test("llamaReference greedily tells the known stories260K story from BOS", async () => {
  const started = performance.now();
  // 60 tokens end at "too high"; the 61st is the story's final full stop.
  const result = await llamaReference(STORIES, { promptTokens: [1], steps: 61, topN: 5 });
  const wallMs = performance.now() - started;
  console.log(`llamaReference 61 steps: ${wallMs.toFixed(0)} ms`, result.timingMs);

  assert.equal(result.tokens.length, 61);
  const text = (await decoder(STORIES))(result.tokens);
  assert.ok(text.startsWith("Once upon a time, there was a little girl named Lily."), text);
  assert.ok(text.startsWith(STORY), text);

  for (const [i, step] of result.steps.entries()) {
    const logprobs = result.logprobs[i];
    assert.equal(logprobs.length, 512);
    // A log-softmax sums to probability 1, and the greedy token is the most likely one.
    assert.ok(Math.abs(logSumExp(logprobs)) < 1e-5, `step ${i}: logsumexp ${logSumExp(logprobs)}`);
    assert.equal(step.token, result.tokens[i]);
    assert.equal(step.top[0].id, step.token);
    assert.equal(step.logprob, Math.max(...logprobs));
    assert.equal(step.top.length, 5);
  }
});

Deno.test("llamaReference generates exactly `steps` tokens and rejects bad options", async () => {
  // The sentence prompt from make-references: a multi-token prompt evaluated in one batch.
  const result = await llamaReference(STORIES, {
    promptTokens: [1, 274, 287, 269, 345, 400, 428, 263, 377, 267, 265],
    steps: 3,
  });
  assert.equal(result.tokens.length, 3);
  assert.equal(result.steps[0].top.length, 10);
  await assert.rejects(llamaReference(STORIES, { promptTokens: [], steps: 3 }), /promptTokens/);
  await assert.rejects(llamaReference(STORIES, { promptTokens: [1], steps: 0 }), /steps/);
  const missing = "/nonexistent/model.gguf";
  await assert.rejects(llamaReference(missing, { promptTokens: [1], steps: 1 }), /model\.gguf/);
});

Deno.test("committed tests/reference/stories260K.json matches a live llama.cpp run", async () => {
  const committed: ReferenceFile = JSON.parse(
    await Deno.readTextFile(referencePath("stories260K")),
  );
  assert.equal(committed.sha256, await sha256File(STORIES), "stories260K.gguf changed");
  const spec = referenceModel("stories260K");
  assert.ok(spec);
  const live = await makeReference(spec, Deno.cwd());
  assert.equal(live.runs.length, committed.runs.length);
  for (const [r, run] of live.runs.entries()) {
    const want = committed.runs[r];
    assert.deepEqual(run.promptTokens, want.promptTokens);
    assert.deepEqual(run.tokens, want.tokens, `${run.name}: greedy tokens differ`);
    for (const [i, step] of run.steps.entries()) {
      // Same build on another CPU variant may differ in the last bits; more means regeneration.
      assert.ok(Math.abs(step.logprob - want.steps[i].logprob) < 1e-4, `${run.name} step ${i}`);
      assert.deepEqual(step.top.map((t) => t[0]), want.steps[i].top.map((t) => t[0]));
    }
  }
});
