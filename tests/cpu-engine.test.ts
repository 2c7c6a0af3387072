import assert from "node:assert/strict";
import {
  createCpuEngine,
  createCpuStage,
  GgmlType,
  openGguf,
  readTensorData,
} from "../inference/mod.ts";
import { typedMetadata, writeGguf } from "./support/gguf-writer.ts";
import { writeTestModel } from "./support/test-models.ts";
import { STORIES } from "./helpers.ts";
import { argmax } from "./support/logits.ts";

Deno.test("layer ranges: stories260K split in three stages gives the whole model's logits exactly", async () => {
  const whole = await createCpuEngine({ path: STORIES, ctxSize: 64 });
  const stages = await Promise.all(
    [[0, 2], [2, 3], [3, 5]].map(([layerStart, layerEnd]) =>
      createCpuStage({ path: STORIES, ctxSize: 64, layerStart, layerEnd })
    ),
  );
  const sessions = stages.map((s) => s.createSession());
  const session = whole.createSession();
  let tokens = [1, 274, 287];
  for (let step = 0; step < 40; step++) {
    const want = session.evaluate(tokens);
    const hidden = stages[0].embed(tokens);
    for (const s of sessions) s.forward(hidden, tokens.length);
    const got = stages[2].logits(hidden, tokens.length - 1);
    assert.deepEqual(got, want, `step ${step}`);
    tokens = [argmax(want)];
  }
  assert.equal(sessions[1].position, 42);
  assert.throws(() => stages[1].embed([1]), /not the first stage/);
  assert.throws(() => stages[0].logits(new Float32Array(64), 0), /not the last stage/);
});

Deno.test("sessions: rewind keeps a shared prefix and recomputes the same logits", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 32 });
  const s = engine.createSession();
  s.evaluate([1, 274]);
  const a = s.evaluate([287]);
  s.rewind(2);
  assert.deepEqual(s.evaluate([287]), a);
  assert.throws(() => s.rewind(9), /cannot rewind to 9/);
  assert.throws(() => s.evaluate(new Array(40).fill(1)), /context full/);
  assert.throws(
    () => engine.createSession().evaluate([999]),
    /token id 999 is outside the vocabulary/,
  );
});

Deno.test("loading: unknown architectures, missing tensors and unsupported types are clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const options = {
      arch: "llama" as const,
      type: GgmlType.F32,
      dim: 64,
      layers: 1,
      heads: 4,
      kvHeads: 2,
      ffn: 128,
      seed: 1,
      vocabFrom: STORIES,
    };
    // A valid model whose architecture name is changed: Grove must refuse it by name.
    const good = `${dir}/good.gguf`;
    await writeTestModel(good, options);
    const src = await openGguf(good);
    const tensors = await Promise.all(
      src.tensors.map(async (t) => ({
        name: t.name,
        dims: t.dims,
        type: t.type,
        data: await readTensorData(src, t),
      })),
    );
    const meta = typedMetadata(src);

    await writeGguf(`${dir}/mamba.gguf`, {
      metadata: { ...meta, "general.architecture": "mamba" },
      tensors,
    });
    await assert.rejects(
      createCpuEngine({ path: `${dir}/mamba.gguf` }),
      /unsupported model architecture "mamba"/,
    );

    await writeGguf(`${dir}/noffn.gguf`, {
      metadata: meta,
      tensors: tensors.filter((t) => t.name !== "blk.0.ffn_up.weight"),
    });
    await assert.rejects(
      createCpuEngine({ path: `${dir}/noffn.gguf` }),
      /tensor "blk.0.ffn_up.weight" is missing/,
    );

    const q41 = tensors.map((t) =>
      t.name === "blk.0.attn_q.weight"
        ? { ...t, type: GgmlType.Q4_1, data: new Uint8Array(64 / 32 * 20 * 64) }
        : t
    );
    await writeGguf(`${dir}/q41.gguf`, { metadata: meta, tensors: q41 });
    await assert.rejects(
      createCpuEngine({ path: `${dir}/q41.gguf` }),
      /"blk.0.attn_q.weight" has type Q4_1, which Grove cannot compute with yet/,
    );

    await assert.rejects(
      createCpuStage({ path: good, layerStart: 1, layerEnd: 3 }),
      /layer range \[1, 3\) is outside 0..1/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
