/**
 * The lane layout's grouped form (one invocation per GQA group, attention-lane.ts) against its
 * per-head form: the same outputs bit for bit, with sinks, a window and a value dim of its own;
 * and which form a dispatch takes.
 */
import assert from "node:assert/strict";
import {
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindAttentionRows } from "./attention.ts";
import { laneGroup, laneHeadsFor } from "./attention-lane.ts";

Deno.test("attention lanes: a GQA group per invocation once the rows fill the lanes", () => {
  const llama = { heads: 16, kvHeads: 4, headDim: 128, valueDim: 128 };
  assert.equal(laneGroup(llama), 4);
  assert.equal(laneHeadsFor(llama, 1), 1, "one row: 4 invocations would leave lanes idle");
  assert.equal(laneHeadsFor(llama, 4), 4);
  assert.equal(laneGroup({ ...llama, kvHeads: 16 }), 1, "no GQA");
  // 8 heads of 256 dims an invocation is past what it may hold
  assert.equal(laneGroup({ heads: 16, kvHeads: 2, headDim: 256, valueDim: 256 }), 1);
  assert.equal(laneGroup({ heads: 8, kvHeads: 1, headDim: 256, valueDim: 256 }), 1);
  assert.equal(laneGroup({ heads: 4, kvHeads: 1, headDim: 256, valueDim: 256 }), 4); // gemma3 1B
});

Deno.test("attention lanes: 16 stacked rows, grouped, equal each row run alone a head at a time", async () => {
  const { device } = await createTestGpu();
  const cases = [
    { heads: 16, kvHeads: 4, headDim: 128, valueDim: 128, window: 0, sinks: false },
    { heads: 8, kvHeads: 2, headDim: 16, valueDim: 32, window: 7, sinks: true },
  ];
  for (const [ci, c] of cases.entries()) {
    const { window, sinks: withSinks, ...shape } = c;
    const n = 16, ctx = 40;
    const kDim = shape.kvHeads * shape.headDim, vDim = shape.kvHeads * shape.valueDim;
    const qDim = shape.heads * shape.headDim, oDim = shape.heads * shape.valueDim;
    // row t: slot t at position 3 + 2t (so each sees its own number of positions)
    const table = Array.from({ length: n }, (_, t) => [t, 3 + 2 * t]).flat();
    const keys = uploadF32(device, randomF32(n * ctx * kDim, 10 + ci, 1));
    const values = uploadF32(device, randomF32(n * ctx * vDim, 20 + ci, 1));
    const q = randomF32(n * qDim, 30 + ci, 2);
    const sinks = withSinks ? uploadF32(device, randomF32(shape.heads, 40 + ci, 1)) : undefined;
    const params = { n, ctx, window, ...shape };
    assert.equal(laneHeadsFor(shape, n), shape.heads / shape.kvHeads, `case ${ci} runs grouped`);

    const rowsOf = (words: number[]) =>
      uploadF32(device, new Float32Array(new Uint32Array(words).buffer));
    const all = createF32(device, n * oDim);
    const together = bindAttentionRows(
      device,
      { rows: rowsOf(table), q: uploadF32(device, q), keys, values, out: all, sinks },
      params,
      "lane",
    );
    submitKernels(device, [together]);
    const got = await readF32(device, all, n * oDim);
    for (let t = 0; t < n; t++) {
      const one = createF32(device, oDim);
      const alone = bindAttentionRows(
        device,
        {
          rows: rowsOf(table.slice(2 * t, 2 * t + 2)),
          q: uploadF32(device, q.slice(t * qDim, (t + 1) * qDim)),
          keys,
          values,
          out: one,
          sinks,
        },
        { ...params, n: 1 },
        "lane",
      );
      submitKernels(device, [alone]);
      assert.deepEqual(
        await readF32(device, one, oDim),
        got.slice(t * oDim, (t + 1) * oDim),
        `case ${ci}, row ${t}`,
      );
    }
  }
});
