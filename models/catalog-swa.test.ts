// A catalog entry's sliding-window layers count as the planner counts them: a ring of the window
// and a step's rows (inference/swa-cache.ts), not the whole context.
import assert from "node:assert/strict";
import { CATALOG, findCatalogEntry, type KvCacheShape, validateCatalog } from "./catalog.ts";
import { kvCacheBytes } from "./catalog-fit.ts";
import {
  isLocalLayer,
  modelConfigOf,
  modelShapeOf,
  openGguf,
  SCRATCH_ROWS,
  stageStateBytes,
} from "../inference/mod.ts";
import { writeGemma3F32 } from "../tests/support/reference-models-dense.ts";
import { referenceModel } from "../tests/support/reference-models.ts";

const GIB = 1024 ** 3;

Deno.test("catalog swa: a gemma3 and a gpt-oss header's shape with its window gives the planner's cache", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-catalog-swa-" });
  try {
    const gemma3 = `${dir}/gemma3.gguf`;
    await writeGemma3F32(gemma3, 8192);
    const gptOss = await referenceModel("test-gpt-oss-f16")!.build(dir);
    for (const path of [gemma3, gptOss]) {
      const file = await openGguf(path);
      const config = modelConfigOf(file);
      const local = Array.from({ length: config.layers }, (_, l) => isLocalLayer(config, l));
      const shape: KvCacheShape = {
        layers: config.layers,
        kvHeads: config.kvHeads,
        keyLength: config.headDim,
        valueLength: config.valueDim,
        windowLayers: local.filter(Boolean).length,
        window: config.slidingWindow,
      };
      assert.ok(shape.windowLayers! > 0 && shape.windowLayers! < config.layers, config.arch);
      for (const ctx of [256, 2048, 8192]) {
        const planner = stageStateBytes(modelShapeOf(file, config, ctx), 0, config.layers);
        assert.equal(kvCacheBytes(shape, ctx), planner, `${config.arch} at ${ctx}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("catalog swa: Gemma 3 4B's cache at its own 131072 tokens is 5 global layers' and 29 rings of 1536", () => {
  const shape = findCatalogEntry("gemma-3-4b-it-q4_k_m")!.kvCache!;
  const perPosition = 2 * 4 * 256 * 2; // keys and values, 4 kv heads of 256, f16
  const bytes = kvCacheBytes(shape, 131072);
  assert.equal(bytes, (5 * 131072 + 29 * (1024 + SCRATCH_ROWS)) * perPosition);
  assert.ok(bytes < 3 * GIB, `${bytes}`);
  const full = kvCacheBytes({ ...shape, windowLayers: undefined, window: undefined }, 131072);
  assert.equal(full, 34 * 131072 * perPosition); // 17 GiB, as every layer was counted before
});

Deno.test("catalog swa: windowLayers and window come together, the layers bounding them", () => {
  const good = CATALOG[0];
  const kvCache = { layers: 2, kvHeads: 1, keyLength: 64, valueLength: 64 };
  assert.equal(
    validateCatalog([{ ...good, kvCache: { ...kvCache, windowLayers: 1, window: 8 } }]).length,
    1,
  );
  assert.throws(
    () => validateCatalog([{ ...good, kvCache: { ...kvCache, windowLayers: 1 } }]),
    /"kvCache.window" must be a positive integer \(both or neither\)/,
  );
  assert.throws(
    () => validateCatalog([{ ...good, kvCache: { ...kvCache, windowLayers: 3, window: 8 } }]),
    /"kvCache.windowLayers" exceeds "kvCache.layers"/,
  );
});
