/**
 * A qwen35moe model's recurrent state (its gated delta net layers') travels with each sequence
 * wherever the CPU engine runs one: batched slots, pipeline stages, a replay from the start.
 * The model is the agreement tests' Q4_K_M one (tests/reference/test-qwen35moe-q4_k_m.json).
 */
import assert from "node:assert/strict";
import {
  createBatchedCpuEngine,
  createCpuEngine,
  createCpuStage,
  loadStageBatch,
  modelConfigOf,
  modelShapeOf,
  openGguf,
  stageBytes,
  stageWeightBytes,
} from "../inference/mod.ts";
import { recurrentStateBytes } from "../inference/recurrent-state.ts";
import { createRunState, kvCacheBytes } from "../inference/attention.ts";
import { loadCpuModel } from "../inference/cpu-engine.ts";
import {
  buildQwen35Model,
  QWEN35_TEST_SHAPE,
  writeQwen35Model,
} from "./support/test-models-qwen35.ts";
import { writeGguf } from "./support/gguf-writer.ts";
import { writeTestModel } from "./support/test-models.ts";
import { GgmlType } from "../inference/mod.ts";
import { argmax } from "./support/logits.ts";

const STEPS = 16;
const PROMPT_A = [1, 7, 42];
const PROMPT_B = [1, 300, 5, 99, 123, 64, 8];

const dir = Deno.makeTempDirSync({ prefix: "grove-qwen35moe-" });
const path = `${dir}/qwen35moe.gguf`;
await writeQwen35Model(path, { ...QWEN35_TEST_SHAPE, mix: "Q4_K_M", seed: 1 });
const { engine, batch } = await createBatchedCpuEngine({ path, ctxSize: 128, maxSlots: 2 });

/** Greedy tokens of one sequence alone, on an Engine session. */
function alone(prompt: number[], on = engine): number[] {
  const session = on.createSession();
  let logits = session.evaluate(prompt);
  const out: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    out.push(argmax(logits));
    logits = session.evaluate([out[i]]);
  }
  return out;
}

const wantA = alone(PROMPT_A), wantB = alone(PROMPT_B);

Deno.test("qwen35moe: two sequences stepped together give the tokens each gives alone", async () => {
  const a = batch.acquire()!, b = batch.acquire()!;
  try {
    let [la, lb] = await batch.step([{ slot: a, tokens: PROMPT_A }, { slot: b, tokens: PROMPT_B }]);
    const gotA: number[] = [], gotB: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      gotA.push(argmax(la));
      gotB.push(argmax(lb));
      [la, lb] = await batch.step([{ slot: a, tokens: [gotA[i]] }, { slot: b, tokens: [gotB[i]] }]);
    }
    assert.deepEqual(gotA, wantA);
    assert.deepEqual(gotB, wantB);
  } finally {
    batch.release(a);
    batch.release(b);
  }
});

Deno.test("qwen35moe: a reused batch slot starts from a clean recurrent state", async () => {
  const first = batch.acquire()!;
  await batch.step([{ slot: first, tokens: PROMPT_A }]);
  batch.release(first);
  const slot = batch.acquire()!;
  try {
    assert.equal(slot, first, "the released slot (and its state object) is the one reused");
    let [logits] = await batch.step([{ slot, tokens: PROMPT_B }]);
    const got: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      got.push(argmax(logits));
      [logits] = await batch.step([{ slot, tokens: [got[i]] }]);
    }
    assert.deepEqual(got, wantB);
  } finally {
    batch.release(slot);
  }
});

Deno.test("qwen35moe: split into two pipeline stages, each keeping its own layers' state", async () => {
  // Stage 1 holds only linear-attention layers, stage 2 one more and the full-attention layer.
  const head = await createCpuStage({ path, ctxSize: 128, layerStart: 0, layerEnd: 2 });
  const tail = await createCpuStage({ path, ctxSize: 128, layerStart: 2, layerEnd: 4 });
  const s1 = head.createSession(), s2 = tail.createSession();
  const run = (tokens: number[]) => {
    const hidden = head.embed(tokens);
    s1.forward(hidden, tokens.length);
    s2.forward(hidden, tokens.length);
    return tail.logits(hidden, tokens.length - 1);
  };
  let logits = run(PROMPT_B);
  const got: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    got.push(argmax(logits));
    logits = run([got[i]]);
  }
  assert.deepEqual(got, wantB);
});

Deno.test("qwen35moe: a session rewinds only to 0, which empties its recurrent state", () => {
  const session = engine.createSession();
  session.evaluate(PROMPT_A);
  assert.throws(() => session.rewind(2), /cannot rewind to 2: .*recurrent state/);
  assert.equal(session.position, PROMPT_A.length, "a refused rewind leaves the sequence as it was");
  session.rewind(0);
  let logits = session.evaluate(PROMPT_B);
  const got: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    got.push(argmax(logits));
    logits = session.evaluate([got[i]]);
  }
  assert.deepEqual(got, wantB);
});

Deno.test("qwen35moe: a file with a multi-token-prediction block runs its main layers only", async () => {
  // Same seed, so blk.0-3 are the same tensors; blk.4 is the MTP head llama.cpp also skips.
  const mtp = `${dir}/qwen35moe-mtp.gguf`;
  await writeQwen35Model(mtp, { ...QWEN35_TEST_SHAPE, mix: "Q4_K_M", seed: 1, mtpLayers: 1 });
  const withMtp = await createCpuEngine({ path: mtp, ctxSize: 128 });
  assert.equal(withMtp.config.layers, 4);
  assert.equal(withMtp.config.nextnLayers, 1);
  assert.deepEqual(alone(PROMPT_B, withMtp), wantB);
});

Deno.test("qwen35moe: writeTestModel makes one from the generic options", async () => {
  const generic = `${dir}/generic.gguf`;
  await writeTestModel(generic, {
    arch: "qwen35moe",
    type: GgmlType.F16,
    dim: 128,
    layers: 8,
    heads: 2,
    kvHeads: 1,
    headDim: 32,
    ffn: 64,
    seed: 3,
  });
  const e = await createCpuEngine({ path: generic, ctxSize: 32 });
  assert.equal(e.config.arch, "qwen35moe");
  assert.deepEqual(e.config.recurrent?.recurrentLayers, [
    true,
    true,
    true,
    false,
    true,
    true,
    true,
    false,
  ]);
  assert.equal(e.config.moe?.expertFfn, 64);
  const logits = e.createSession().evaluate([1, 2, 3]);
  assert.ok(logits.every(Number.isFinite));
});

Deno.test("qwen35moe: its shape counts linear layers' recurrent state, not a KV cache", async () => {
  const file = await openGguf(path);
  const config = modelConfigOf(file);
  const shape = modelShapeOf(file, config, 128, "f32");
  // (convKernel − 1) · convDim + vHeads · headDim² floats per linear layer
  const r = recurrentStateBytes(config, 0, 1);
  assert.equal(r, 4 * (3 * 512 + 8 * 32 * 32));
  assert.deepEqual(shape.layerStateBytes, [r, r, r, shape.kvBytesPerLayer]);
  const state = (a: number, b: number) =>
    stageBytes(shape, a, b) - stageWeightBytes(shape, a, b) - shape.scratchBytes;
  assert.equal(state(0, 2), 2 * r);
  assert.equal(state(2, 4), r + shape.kvBytesPerLayer);
  // A CPU sequence holds that: caches in the attention layer only, states in the others.
  const model = await loadCpuModel({ path, ctxSize: 128, kvType: "f32" });
  const run = createRunState(model.config, model.weights, 128, "f32");
  assert.deepEqual(run.keyCache.map((c) => c.length > 0), [false, false, false, true]);
  let held = 0;
  for (const l of run.recurrent!.layers) {
    held += (l?.conv.byteLength ?? 0) + (l?.delta.byteLength ?? 0);
  }
  assert.equal(held, 3 * r);
  assert.equal(kvCacheBytes(run), shape.kvBytesPerLayer); // all 128 positions of one layer
  // The stages a split loads hold exactly the weights the shape plans for them.
  for (const [layerStart, layerEnd] of [[0, 2], [2, 4]]) {
    const stage = await loadStageBatch({ path, layerStart, layerEnd, ctxSize: 128 });
    stage.close();
    assert.equal(stage.info.weightBytes, stageWeightBytes(shape, layerStart, layerEnd));
  }
});

Deno.test("qwen35moe: a file without feed_forward_length takes its experts' width", async () => {
  const contents = await buildQwen35Model({ ...QWEN35_TEST_SHAPE, mix: "F16", seed: 1 });
  delete contents.metadata["qwen35moe.feed_forward_length"];
  const bare = `${dir}/no-ffn.gguf`;
  await writeGguf(bare, contents);
  const config = modelConfigOf(await openGguf(bare));
  assert.equal(config.ffn, QWEN35_TEST_SHAPE.expertFfn);
  assert.equal(config.moe?.expertFfn, QWEN35_TEST_SHAPE.expertFfn);
  assert.equal(config.moe?.sharedFfn, QWEN35_TEST_SHAPE.sharedFfn);
});

Deno.test("qwen35moe: clean up the generated model", () => {
  Deno.removeSync(dir, { recursive: true });
});
