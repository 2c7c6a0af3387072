import assert from "node:assert/strict";
import { join } from "node:path";
import {
  GgmlType,
  modelConfigOf,
  modelShapeOf,
  openGguf,
  stageBytes,
  stageWeightBytes,
  SUPPORTED_ARCHITECTURES,
} from "../inference/mod.ts";
import {
  DEFAULT_CTX_CAP,
  defaultCtxSize,
  kvCacheBytes,
  modelCatalog,
  needsWithoutHeader,
  scratchAllowance,
} from "./catalog-fit.ts";
import { CATALOG, type CatalogEntry, findCatalogEntry } from "./catalog.ts";
import { describeModelRef } from "./reference-kind.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { writeTestModel } from "../tests/support/test-models.ts";
import { moeTestModelShape } from "../tests/support/reference-models-moe.ts";
import { QWEN35_TEST_SHAPE, writeQwen35Model } from "../tests/support/test-models-qwen35.ts";

const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
const entry = (id: string) => findCatalogEntry(id)!;

Deno.test("catalog-fit: the KV cache from a catalog shape is the planner's for the same header", async () => {
  const file = await openGguf(STORIES);
  const config = modelConfigOf(file);
  const stories = entry("stories260K");
  for (const ctx of [256, 2048]) {
    const planner = modelShapeOf(file, config, ctx).kvBytesPerLayer * config.layers;
    assert.equal(kvCacheBytes(stories.kvCache!, ctx), planner, `ctx ${ctx}`);
  }
});

Deno.test("catalog-fit: without a header, a MoE or hybrid file's size and kvCache are the planner's weights and cache", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-fit-moe-" });
  try {
    const moePath = join(dir, "moe.gguf");
    const moeShape = moeTestModelShape("qwen3moe");
    await writeTestModel(moePath, {
      ...moeShape,
      type: GgmlType.F16, // quick to write; the held bytes follow each tensor's type either way
      seed: 1,
      vocabFrom: STORIES,
    });
    const hybridPath = join(dir, "hybrid.gguf");
    await writeQwen35Model(hybridPath, {
      ...QWEN35_TEST_SHAPE,
      mix: "F16",
      seed: 1,
      vocabFrom: STORIES,
    });
    const cases = [
      { path: moePath, cachedLayers: moeShape.layers },
      // One full-attention layer in four keeps a cache; the others a recurrent state.
      { path: hybridPath, cachedLayers: QWEN35_TEST_SHAPE.layers / 4 },
    ];
    for (const { path, cachedLayers } of cases) {
      const file = await openGguf(path);
      const config = modelConfigOf(file);
      const ctx = Math.min(config.contextLength, DEFAULT_CTX_CAP);
      const shape = modelShapeOf(file, config, ctx);
      const L = config.layers;
      const weights = stageWeightBytes(shape, 0, L);
      const states = stageBytes(shape, 0, L) - weights - shape.scratchBytes;
      const kvCache = {
        layers: cachedLayers,
        kvHeads: config.kvHeads,
        keyLength: config.headDim,
        valueLength: config.valueDim,
      };
      const kv = kvCacheBytes(kvCache, ctx);
      assert.equal(kv, cachedLayers * shape.kvBytesPerLayer, config.arch);
      // The rest of the layers' state is the hybrid's recurrent state, within the allowance.
      const size = (await Deno.stat(path)).size;
      assert.ok(states - kv >= 0 && states - kv < scratchAllowance(size), config.arch);
      // Every expert is held: the file's size is the weights' within its header's metadata.
      assert.ok(Math.abs(size - weights) / weights < 0.02, `${config.arch}: ${size} vs ${weights}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("catalog-fit: a mixture-of-experts file needs its size, its small KV cache and scratch, not size × 1.2", () => {
  const qwen = entry("qwen3-30b-a3b-q4_k_m");
  assert.equal(defaultCtxSize(qwen), DEFAULT_CTX_CAP); // 40960 of its own, capped
  // 48 layers × 4 KV heads × 128 wide, keys and values, f16, 4096 positions: 384 MiB.
  assert.equal(kvCacheBytes(qwen.kvCache!, 4096), 384 * MIB);
  const need = needsWithoutHeader(qwen, qwen.size!);
  assert.deepEqual(need, { bytes: 18_556_685_824 + 384 * MIB + 256 * MIB, from: "shape" });
  // The old rule would have asked ~2.8 GiB more of a machine that holds it fine.
  assert.ok(qwen.size! * 1.2 - need.bytes > 2.5 * GIB);

  const gptOss = entry("gpt-oss-20b-mxfp4");
  assert.equal(
    needsWithoutHeader(gptOss, gptOss.size!).bytes,
    // 24 layers × 8 × 64 wide, the 12 sliding-window layers at their 128 + 512 positions only
    12_109_566_624 + (12 * 4096 + 12 * 640) * 2 * 8 * 64 * 2 + 256 * MIB,
  );
});

Deno.test("catalog-fit: a long-context model's cache is counted at the default context, not its own", () => {
  const qwen35 = entry("qwen3.5-35b-a3b-iq4_xs");
  assert.equal(qwen35.contextLength, 262144);
  assert.equal(defaultCtxSize(qwen35), 4096);
  // Only the 10 full-attention layers of 40 keep a cache: 10 × 2 heads × 256 wide at 4096.
  assert.equal(kvCacheBytes(qwen35.kvCache!, 4096), 80 * MIB);
  assert.equal(
    needsWithoutHeader(qwen35, qwen35.approxSize!).bytes,
    qwen35.approxSize! + 80 * MIB + 256 * MIB,
  );
  // Its own 262144 tokens need 64 × the cache: 5 GiB.
  assert.equal(
    needsWithoutHeader(qwen35, qwen35.approxSize!, 262144).bytes,
    qwen35.approxSize! + 5 * GIB + 256 * MIB,
  );
  // A short-context model is counted at its own length.
  const short: CatalogEntry = { ...entry("stories260K"), contextLength: 2048 };
  assert.equal(defaultCtxSize(short), 2048);
  assert.equal(defaultCtxSize({ ...short, contextLength: undefined }), DEFAULT_CTX_CAP);
});

Deno.test("catalog-fit: scratch is a twentieth of the weights within 64 to 256 MiB; no shape keeps size × 1.2", () => {
  assert.equal(scratchAllowance(1_000_000), 64 * MIB);
  assert.equal(scratchAllowance(2 * GIB), Math.round(2 * GIB / 20));
  assert.equal(scratchAllowance(20 * GIB), 256 * MIB);
  const bare: CatalogEntry = { ...entry("stories260K"), kvCache: undefined };
  assert.deepEqual(needsWithoutHeader(bare, 1000), { bytes: 1200, from: "size" });
});

Deno.test("GET /api/models/catalog's view: runs, the approximate size and the shape estimate per entry", async () => {
  const home = await Deno.makeTempDir({ prefix: "grove-fit-" });
  try {
    const base = entry("mistral-7b-instruct-v0.3-q4_k_m");
    const unknownArch: CatalogEntry = {
      ...base,
      id: "future-arch",
      url: "https://example.invalid/future.gguf",
      architecture: "no-such-arch",
    };
    const view = await modelCatalog({
      groveHome: home,
      modelPath: [],
      catalog: [base, unknownArch],
      memory: () => ({ total: 16 * GIB, available: 4 * GIB }),
    });
    const [mistral, future] = view.models;
    // 4.37 GB as listed, 32 layers × 8 × 128 at 4096 (512 MiB), a twentieth for scratch.
    assert.deepEqual(
      [mistral.size, mistral.approxSize, mistral.needsFrom, mistral.ctxSize, mistral.runs],
      [null, 4_370_000_000, "shape", 4096, true],
    );
    assert.equal(mistral.needsBytes, 4_370_000_000 + 512 * MIB + 218_500_000);
    assert.equal(mistral.fits, false);
    assert.equal(mistral.contextLength, 32768);
    // At its own 32768 tokens the cache is 8 × larger: 4 GiB.
    assert.equal(mistral.ownContextBytes, 4_370_000_000 + 4 * GIB + 218_500_000);
    assert.equal(future.runs, false);
    assert.equal(future.needsBytes, mistral.needsBytes); // listed for what it needs all the same
    // The model field's one line says so too.
    const options = { groveHome: home, modelPath: [], catalog: [base, unknownArch] };
    assert.match(
      (await describeModelRef("future-arch", options)).detail,
      /, size known once downloaded; Grove can't run no-such-arch yet$/,
    );
    assert.doesNotMatch((await describeModelRef(base.id, options)).detail, /can't run/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("catalog-fit: every catalog entry says whether Grove runs it, from the engines' own list", async () => {
  const home = await Deno.makeTempDir({ prefix: "grove-fit-" });
  try {
    const view = await modelCatalog({
      groveHome: home,
      modelPath: [join(home, "none")],
      memory: () => ({ total: 64 * GIB, available: 64 * GIB }),
    });
    assert.equal(view.models.length, CATALOG.length);
    for (const m of view.models) {
      const supported = (SUPPORTED_ARCHITECTURES as readonly string[]).includes(m.architecture);
      assert.equal(m.runs, supported, m.id);
      // Every entry states a need: a header, a size or an approximate size with its shape.
      assert.ok(m.needsBytes !== null && m.needsBytes > 0, m.id);
      assert.ok(m.needsFrom === "header" || m.needsFrom === "shape", `${m.id}: ${m.needsFrom}`);
      assert.ok(m.ownContextBytes! >= m.needsBytes, m.id);
    }
    // The shipped stories260K is read from its header; its own 2048 tokens are the default.
    const stories = view.models.find((m) => m.id === "stories260K")!;
    assert.deepEqual([stories.needsFrom, stories.ctxSize], ["header", 2048]);
    assert.equal(stories.ownContextBytes, stories.needsBytes);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
