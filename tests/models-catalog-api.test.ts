// GET /api/models/catalog and /api/models/reference through the node app, over models/'s hooks:
// spans web and models, so it lives here (web ↛ models).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CATALOG, type CatalogEntry } from "../models/catalog.ts";
import { installedModelHooks } from "../models/mod.ts";
import { modelConfigOf, modelShapeOf, openGguf, wholeModelBytes } from "../inference/mod.ts";
import { fakeService } from "./support/fake-service.ts";
import { STORIES } from "./support/fixtures.ts";
import { createNodeApp } from "../web/mod.ts";

const GIB = 1024 ** 3;
const SHIPPED = fileURLToPath(new URL("../models/stories260K.gguf", import.meta.url));
const get = (path: string) => new Request(`http://localhost${path}`);

/** The planner's estimate for a whole file at the engines' default context. */
async function plannerBytes(path: string): Promise<number> {
  const file = await openGguf(path);
  const config = modelConfigOf(file);
  return wholeModelBytes(modelShapeOf(file, config, Math.min(config.contextLength, 4096)));
}

async function setup() {
  const home = await Deno.makeTempDir({ prefix: "grove-catalog-" });
  const shelf = await Deno.makeTempDir({ prefix: "grove-shelf-" });
  // A catalog model found in GROVE_MODEL_PATH (a copy of stories260K under another name), one
  // known only by size and one known by nothing.
  const onShelf: CatalogEntry = {
    ...CATALOG[0],
    id: "shelf-model",
    name: "Shelf model",
    url: "https://example.invalid/shelf.gguf",
    embedded: undefined,
  };
  await Deno.copyFile(STORIES, join(shelf, "shelf.gguf"));
  const bySize: CatalogEntry = {
    id: "big",
    name: "Big model",
    url: "https://example.invalid/big.gguf",
    sha256: null,
    size: 600 * 1024 ** 2,
    architecture: "qwen3",
    quantization: "Q8_0",
  };
  const unknown: CatalogEntry = {
    ...bySize,
    id: "unknown",
    url: "https://x.invalid/u.gguf",
    size: null,
  };
  const catalog = [CATALOG[0], onShelf, bySize, unknown];
  const app = createNodeApp({
    service: fakeService(),
    node: installedModelHooks({
      groveHome: home,
      modelPath: [shelf],
      catalog,
      // 8 GiB of memory, 700 MiB of it available: the 600 MiB model × 1.2 does not fit.
      memory: () => ({ total: 8 * GIB, available: 700 * 1024 ** 2 }),
    }),
  });
  const cleanup = async () => {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(shelf, { recursive: true });
  };
  return { app, shelf, cleanup };
}

Deno.test("GET /api/models/catalog: each model's need from its header or its size, and whether it fits", async () => {
  const t = await setup();
  try {
    const res = await t.app.fetch(get("/api/models/catalog"));
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.machine.memoryBytes, 8 * GIB);
    const byId = Object.fromEntries(
      body.models.map((m: { id: string }) => [m.id, m]),
    );
    assert.deepEqual(Object.keys(byId), ["stories260K", "shelf-model", "big", "unknown"]);
    const stories = byId["stories260K"];
    // Shipped with Grove: installed without any download, its need the planner's own.
    assert.deepEqual(
      [stories.installed, stories.embedded, stories.needsFrom, stories.fits],
      [true, true, "header", true],
    );
    assert.equal(stories.needsBytes, await plannerBytes(SHIPPED));
    assert.equal(stories.size, 1185376);
    assert.equal(stories.architecture, "llama");
    assert.equal(stories.quantization, "F32");
    const shelf = byId["shelf-model"];
    assert.deepEqual([shelf.installed, shelf.embedded, shelf.needsFrom], [true, false, "header"]);
    assert.equal(shelf.needsBytes, await plannerBytes(join(t.shelf, "shelf.gguf")));
    const big = byId["big"];
    assert.deepEqual(
      [big.installed, big.needsFrom, big.needsBytes, big.fits],
      [false, "size", Math.ceil(600 * 1024 ** 2 * 1.2), false],
    );
    assert.deepEqual([byId.unknown.needsBytes, byId.unknown.fits], [null, null]);
  } finally {
    await t.cleanup();
  }
});

Deno.test("GET /api/models/reference: catalog, Hugging Face, local file and invalid, in one line each", async () => {
  const t = await setup();
  try {
    const ref = async (r: string) => {
      const res = await t.app.fetch(get(`/api/models/reference?ref=${encodeURIComponent(r)}`));
      assert.equal(res.status, 200, r);
      return await res.json();
    };
    assert.deepEqual(await ref("stories260K"), {
      kind: "catalog",
      id: "stories260K",
      detail: `catalog: ${CATALOG[0].name}, 1.1 MiB, shipped with Grove`,
      installed: true,
    });
    assert.deepEqual(await ref("big"), {
      kind: "catalog",
      id: "big",
      detail: "catalog: Big model, 600 MiB",
      installed: false,
    });
    assert.deepEqual(await ref("hf://Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf@v2"), {
      kind: "huggingface",
      id: "hf://Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf@v2",
      detail: "Hugging Face: Qwen/Qwen3-0.6B-GGUF Qwen3-0.6B-Q8_0.gguf@v2",
      installed: false,
    });
    const file = join(t.shelf, "shelf.gguf");
    assert.deepEqual(await ref(file), {
      kind: "path",
      id: file,
      detail: `local file: ${file} (exists, 1.1 MiB)`,
      installed: true,
    });
    assert.deepEqual(await ref(join(t.shelf, "nope.gguf")), {
      kind: "path",
      id: join(t.shelf, "nope.gguf"),
      detail: `local file: ${join(t.shelf, "nope.gguf")} (not found)`,
      installed: false,
    });
    const invalid = await ref("llama-70b");
    assert.deepEqual([invalid.kind, invalid.id, invalid.installed], ["invalid", null, false]);
    assert.match(invalid.detail, /unknown model "llama-70b"; catalog ids: stories260K/);
    assert.match((await ref("hf://owner/repo")).detail, /needs an owner, a repo and a file path/);

    const missing = await t.app.fetch(get("/api/models/reference"));
    assert.equal(missing.status, 400);
    assert.equal((await missing.json()).error.param, "ref");
  } finally {
    await t.cleanup();
  }
});

Deno.test("the catalog and reference routes answer 501 on a node started without the hooks", async () => {
  const app = createNodeApp({ service: fakeService() });
  for (const path of ["/api/models/catalog", "/api/models/reference?ref=x"]) {
    const res = await app.fetch(get(path));
    assert.equal(res.status, 501, path);
    assert.equal((await res.json()).error.code, "not_implemented");
  }
});
