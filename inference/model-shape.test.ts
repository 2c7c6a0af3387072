// The model's needs from its header against what loaded stages and the whole CPU engine hold.
import assert from "node:assert/strict";
import { createCpuEngine } from "./cpu-engine.ts";
import { GgmlType } from "./ggml-type.ts";
import { openGguf } from "./gguf.ts";
import { modelConfigOf } from "./model-config.ts";
import {
  activationBytes,
  type ModelShape,
  modelShapeOf,
  SCRATCH_ROWS,
  SCRATCH_SLOTS,
  stageBytes,
  stageWeightBytes,
  wholeModelBytes,
} from "./model-shape.ts";
import { loadStageBatch } from "./stage-batch.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { writeTestModel } from "../tests/support/test-models.ts";

const CTX = 128;
const dir = Deno.makeTempDirSync({ prefix: "grove-model-shape-" });

async function shapeOf(path: string) {
  const file = await openGguf(path);
  const config = modelConfigOf(file);
  return { file, config, shape: modelShapeOf(file, config, CTX) };
}

/** Each range loaded as a CPU stage holds exactly the shape's weight bytes for it. */
async function checkStages(path: string, shape: ModelShape, ranges: [number, number][]) {
  let held = 0;
  for (const [layerStart, layerEnd] of ranges) {
    const stage = await loadStageBatch({ path, layerStart, layerEnd, ctxSize: CTX });
    stage.close();
    assert.equal(
      stage.info.weightBytes,
      stageWeightBytes(shape, layerStart, layerEnd),
      `[${layerStart}, ${layerEnd})`,
    );
    held += stage.info.weightBytes;
  }
  return held;
}

Deno.test("model shape: stories260K's parts add up to its tensors and to what its stages hold", async () => {
  const { file, config, shape } = await shapeOf(STORIES);
  assert.equal(shape.layerBytes.length, 5);
  assert.equal(shape.tiedHead, false);
  // All of stories260K's tensors are F32: the weights are the file's tensor data.
  const tensors = file.tensors.reduce((sum, t) => sum + t.byteLength, 0);
  assert.equal(stageWeightBytes(shape, 0, 5), tensors);
  assert.equal(shape.firstBytes, 512 * 64 * 4);
  assert.equal(shape.lastBytes, 64 * 4 + 512 * 64 * 4);
  // 2 (keys, values) × ctx × 4 kv heads × 8 wide × f16 (the engines' cache), or f32 if told
  assert.equal(shape.kvBytesPerLayer, 2 * CTX * 4 * 8 * 2);
  assert.equal(modelShapeOf(file, config, CTX, "f32").kvBytesPerLayer, 2 * CTX * 4 * 8 * 4);
  assert.equal(shape.scratchBytes, activationBytes(config, CTX, SCRATCH_ROWS, SCRATCH_SLOTS));

  const held = await checkStages(STORIES, shape, [[0, 2], [2, 3], [3, 5]]);
  assert.equal(held, stageWeightBytes(shape, 0, 5), "the plan's stages hold the whole model once");

  const engine = await createCpuEngine({ path: STORIES, ctxSize: CTX });
  const kv = config.layers * 2 * CTX * config.kvHeads * config.headDim * 2;
  assert.ok(wholeModelBytes(shape) >= engine.info.weightBytes + kv);
  assert.equal(wholeModelBytes(shape), stageBytes(shape, 0, 5));
  assert.equal(
    stageBytes(shape, 2, 3),
    shape.layerBytes[2] + shape.kvBytesPerLayer + shape.scratchBytes,
  );
  assert.throws(() => stageBytes(shape, 3, 3), /empty/);
  assert.throws(() => stageBytes(shape, 0, 6), /outside 0..5/);
});

Deno.test("model shape: a Q4_K model's layers in stored bytes; a tied head counted once whole", async () => {
  const path = `${dir}/q4k-tied.gguf`;
  await writeTestModel(path, {
    arch: "llama",
    type: GgmlType.Q4_K,
    dim: 256,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    ffn: 512,
    seed: 2,
    tiedEmbeddings: true,
  });
  const { shape } = await shapeOf(path);
  assert.equal(shape.tiedHead, true);
  // Q4_K: 144 bytes per 256 values. A layer: q, o (256×256), k, v (128×256), gate, up, down
  // (512×256), two norms of 256 f32.
  const q4k = (n: number) => (n / 256) * 144;
  const layer = q4k(2 * 256 * 256 + 2 * 128 * 256 + 3 * 512 * 256) + 2 * 256 * 4;
  assert.deepEqual(shape.layerBytes, [layer, layer, layer, layer]);
  assert.equal(shape.firstBytes, q4k(512 * 256));
  assert.equal(shape.lastBytes, 256 * 4 + shape.firstBytes, "the last stage loads the embedding");
  // Split, both ends load the embedding; whole, it is held once.
  const split = await checkStages(path, shape, [[0, 1], [1, 4]]);
  assert.equal(split, 4 * layer + 2 * shape.firstBytes + 256 * 4);
  const whole = await checkStages(path, shape, [[0, 4]]);
  assert.equal(whole, 4 * layer + shape.firstBytes + 256 * 4);
  const engine = await createCpuEngine({ path, ctxSize: CTX });
  const kv = 4 * 2 * CTX * 2 * 64 * 2;
  assert.ok(wholeModelBytes(shape) >= engine.info.weightBytes + kv);
});

Deno.test("model shape: clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
