// The context a node takes when not told: the model's own where the budget holds it whole, else
// the largest multiple of 256 that fits, and the floor where nothing above it fits.
import assert from "node:assert/strict";
import { chooseContextSize, CONTEXT_FLOOR, gpuContextSize } from "./context-size.ts";
import { GgmlType } from "./ggml-type.ts";
import { openGguf } from "./gguf.ts";
import { modelConfigOf } from "./model-config.ts";
import { modelShapeOf, wholeModelBytes } from "./model-shape.ts";
import { writeTestModel } from "../tests/support/test-models.ts";

const MiB = 1024 ** 2;

Deno.test("context size: the model's own where it fits, else the largest multiple of 256 that does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-context-size-" });
  try {
    const path = `${dir}/long.gguf`;
    await writeTestModel(path, {
      arch: "llama",
      type: GgmlType.F32,
      dim: 128,
      layers: 4,
      heads: 4,
      kvHeads: 4,
      ffn: 256,
      seed: 3,
      contextLength: 131072,
    });
    const file = await openGguf(path);
    const config = modelConfigOf(file);
    const need = (ctx: number) => wholeModelBytes(modelShapeOf(file, config, ctx));

    const roomy = chooseContextSize(file, config, { bytes: 4096 * MiB, source: "--max-memory" });
    assert.equal(roomy.ctxSize, 131072);
    assert.match(roomy.reason, /the model's own length, within --max-memory/);

    // 4 layers × 2 × 128 wide × f16 = 2 KiB a token: 64 MiB holds ~28k tokens beside the rest.
    const budget = { bytes: 64 * MiB, source: "--max-memory" };
    const tight = chooseContextSize(file, config, budget);
    assert.equal(tight.ctxSize % 256, 0);
    assert.ok(tight.ctxSize > CONTEXT_FLOOR && tight.ctxSize < 131072, `${tight.ctxSize}`);
    assert.ok(need(tight.ctxSize) <= budget.bytes, "it fits");
    assert.ok(need(tight.ctxSize + 256) > budget.bytes, "256 more would not");
    assert.match(tight.reason, /over --max-memory \(64\.0 MiB\); \d+ tokens is the largest/);
    // The f32 cache (the GPU's) takes twice as much a token: a shorter context fits.
    assert.ok(chooseContextSize(file, config, budget, "f32").ctxSize < tight.ctxSize);

    const starved = chooseContextSize(file, config, { bytes: MiB, source: "--max-memory" });
    assert.equal(starved.ctxSize, CONTEXT_FLOOR, "a model split anyway keeps the floor");
    assert.match(starved.reason, /does not fit whole even at 4096 tokens/);

    assert.equal(gpuContextSize(config).ctxSize, CONTEXT_FLOOR);
    assert.equal(gpuContextSize({ ...config, contextLength: 2048 }).ctxSize, 2048);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
