// StageBatch on the CPU: a model cut into three layer ranges, chained by hand as the split's
// stages are (tests/support/stage-chain.ts), against the whole CPU engine's lone sessions; what
// each stage reads of the GGUF; the checks. A WebGPU stage among CPU ones:
// tests/stage-batch-webgpu.test.ts.
import assert from "node:assert/strict";
import { createCpuEngine } from "./cpu-engine.ts";
import { openGguf } from "./gguf.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import {
  CHAIN_CTX as CTX,
  loadStages,
  runChain,
  writeSplitTestModel,
} from "../tests/support/stage-chain.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-stage-batch-" });
const Q4K = `${dir}/test-llama-q4_k-6.gguf`;
await writeSplitTestModel(Q4K);

function assertSame(label: string, got: Float32Array, want: Float32Array) {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.equal(worst, 0, `${label}: the stages' logits differ from the whole engine's by ${worst}`);
}

for (
  const [name, path, ranges] of [
    ["stories260K", STORIES, [[0, 2], [2, 4], [4, 5]]],
    ["a Q4_K model of 6 layers", Q4K, [[0, 2], [2, 3], [3, 6]]],
  ] as [string, string, [number, number][]][]
) {
  Deno.test(`stage batch: ${name} in three CPU stages gives the whole engine's logits`, async () => {
    const stages = await loadStages(path, ranges);
    const engine = await createCpuEngine({ path, ctxSize: CTX });
    try {
      await runChain(stages, engine, 8, assertSame);
    } finally {
      stages.forEach((s) => s.close());
    }
  });
}

Deno.test("stage batch: each stage reads only its share of the GGUF's bytes", async () => {
  for (
    const [path, ranges] of [[STORIES, [[0, 2], [2, 4], [4, 5]]], [Q4K, [[0, 3], [3, 6]]]] as [
      string,
      [number, number][],
    ][]
  ) {
    const file = await openGguf(path);
    const stages = await loadStages(path, ranges);
    const read = stages.map((s) => s.info.bytesRead);
    stages.forEach((s) => s.close());
    const share = 0.6 * file.fileSize;
    assert.ok(read.every((r) => r < share), `${path}: ${read} of ${file.fileSize} bytes`);
    // Every tensor once (no tied head here), plus a header per stage.
    const sum = read.reduce((a, b) => a + b, 0);
    const headers = sum - (file.fileSize - file.dataOffset);
    assert.ok(
      headers >= ranges.length * file.dataOffset && headers <= ranges.length * 64 * 1024,
      `${path}: the stages read ${sum} bytes of ${file.fileSize}`,
    );
  }
});

Deno.test("stage batch: the ends, the rows and the slots are checked; the tokenizer is the model's", async () => {
  const [first, middle, last] = await loadStages(STORIES, [[0, 2], [2, 4], [4, 5]]);
  try {
    await assert.rejects(() => middle.embed([1]), /stage \[2, 4\) .* only the first stage/);
    await assert.rejects(() => first.logits(new Float32Array(64), [0]), /only the last stage/);
    assert.equal(first.acquire(), 0);
    const hidden = await first.embed([1, 2]);
    await assert.rejects(() => first.forward([{ slot: 1, count: 2 }], hidden), /not in use/);
    await assert.rejects(() => first.forward([{ slot: 0, count: 3 }], hidden), /need 192/);
    await assert.rejects(() => first.forward([{ slot: 0, count: 0 }], hidden), /no tokens/);
    await assert.rejects(() => last.logits(hidden, [2]), /row 2 is not one of the 2 rows/);
    await first.forward([{ slot: 0, count: 2 }], hidden);
    assert.equal(first.position(0), 2);
    first.rewind(0, 1);
    assert.equal(first.position(0), 1);
    assert.throws(() => first.rewind(0, 2), /cannot rewind to 2/);
    first.release(0);
    assert.equal(first.acquire(), 0);
    assert.equal(first.position(0), 0, "a slot acquired again starts empty");
    assert.deepEqual([first.acquire(), first.acquire()], [1, undefined], "two slots");
    const engine = await createCpuEngine({ path: STORIES, ctxSize: CTX });
    assert.deepEqual(last.tokenizer.encode("Once upon"), engine.tokenizer.encode("Once upon"));
    assert.equal(last.metadata["general.architecture"], "llama");
    assert.deepEqual([middle.layerStart, middle.layerEnd, middle.ctxSize], [2, 4, CTX]);
    assert.equal(middle.info.backend, "cpu");
  } finally {
    [first, middle, last].forEach((s) => s.close());
  }
  await assert.rejects(() => first.embed([1]), /closed/);
});

Deno.test("stage batch: clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
