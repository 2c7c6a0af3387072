import assert from "node:assert/strict";
import { join } from "node:path";
import { CATALOG, type CatalogEntry } from "./catalog.ts";
import { deleteInstalledModel, InstalledModelError, listInstalledModels } from "./installed.ts";
import { readHashStore } from "./download.ts";
import { resolveModel } from "./resolve.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const STORIES_SHA = CATALOG.find((e) => e.id === "stories260K")!.sha256!;
// A catalog model with no hash yet, whose file name the partial takes.
const BIG: CatalogEntry = {
  id: "big-model",
  name: "big",
  url: "https://example.invalid/big.gguf",
  sha256: null,
  size: null,
  architecture: "llama",
  quantization: "F32",
};
const catalog = [...CATALOG, BIG];

async function setup() {
  const home = await Deno.makeTempDir({ prefix: "grove-installed-" });
  const shelf = await Deno.makeTempDir({ prefix: "grove-shelf-" });
  const store = join(home, "models");
  await Deno.mkdir(store, { recursive: true });
  await Deno.copyFile(STORIES, join(store, "stories260K.gguf"));
  await Deno.copyFile(STORIES, join(shelf, "mine.gguf"));
  // A split stage's partial: the whole length, only its first 4 KiB recorded as present.
  const partial = join(store, "big.gguf.partial");
  await Deno.copyFile(STORIES, partial);
  const size = (await Deno.stat(partial)).size;
  await Deno.writeTextFile(
    `${partial}.json`,
    JSON.stringify({ version: 1, url: BIG.url, size, sha256: "0".repeat(64), ranges: [[0, 4096]] }),
  );
  const options = { groveHome: home, modelPath: [shelf], catalog };
  const cleanup = async () => {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(shelf, { recursive: true });
  };
  return { home, shelf, store, partial, size, options, cleanup };
}

Deno.test("listInstalledModels: the store, GROVE_MODEL_PATH folders and a partial, with GGUF facts and hash states", async () => {
  const t = await setup();
  try {
    let models = await listInstalledModels(t.options);
    assert.deepEqual(models.map((m) => [m.id, m.location, m.partial]), [
      ["mine.gguf", "model-path", false],
      ["big-model", "store", true],
      ["stories260K", "store", false],
    ]);
    const stories = models.find((m) => m.id === "stories260K")!;
    assert.equal(stories.file, "stories260K.gguf");
    assert.equal(stories.path, join(t.store, "stories260K.gguf"));
    assert.equal(stories.size, t.size);
    assert.equal(stories.architecture, "llama");
    assert.equal(stories.quantization, "F32");
    // Never hashed yet: listing does not hash.
    assert.deepEqual(stories.sha256, { state: "unknown" });
    const big = models.find((m) => m.id === "big-model")!;
    assert.deepEqual([big.size, big.bytesPresent, big.sha256.state], [t.size, 4096, "unknown"]);
    assert.equal(big.architecture, "llama"); // its header is among the bytes present

    // resolveModel checks both files against the hash store: the catalog's hash is "verified",
    // a file outside the catalog (its record written here) is only "recorded".
    await resolveModel("stories260K", { ...t.options, offline: true, modelPath: [] });
    const store = join(t.store, "hashes.json");
    const data = await readHashStore(store);
    data.verified[join(t.shelf, "mine.gguf")] = {
      ...data.verified[join(t.store, "stories260K.gguf")],
      mtimeMs: (await Deno.stat(join(t.shelf, "mine.gguf"))).mtime!.getTime(),
    };
    await Deno.writeTextFile(store, JSON.stringify(data));
    models = await listInstalledModels(t.options);
    assert.deepEqual(models.find((m) => m.id === "stories260K")!.sha256, {
      state: "verified",
      value: STORIES_SHA,
    });
    assert.deepEqual(models.find((m) => m.id === "mine.gguf")!.sha256, {
      state: "recorded",
      value: STORIES_SHA,
    });
    // A file changed since it was hashed is unknown again.
    await Deno.utime(join(t.store, "stories260K.gguf"), 1, 1);
    models = await listInstalledModels(t.options);
    assert.deepEqual(models.find((m) => m.id === "stories260K")!.sha256, { state: "unknown" });
  } finally {
    await t.cleanup();
  }
});

Deno.test("deleteInstalledModel: removes store files and their hash records; refuses GROVE_MODEL_PATH and unknown ids", async () => {
  const t = await setup();
  try {
    await resolveModel("stories260K", { ...t.options, offline: true, modelPath: [] });
    const storePath = join(t.store, "hashes.json");
    assert.ok((await readHashStore(storePath)).verified[join(t.store, "stories260K.gguf")]);

    const removed = await deleteInstalledModel("stories260K", t.options);
    assert.deepEqual(removed.map((m) => m.path), [join(t.store, "stories260K.gguf")]);
    assert.equal(await exists(join(t.store, "stories260K.gguf")), false);
    assert.equal(
      (await readHashStore(storePath)).verified[join(t.store, "stories260K.gguf")],
      undefined,
    );

    await deleteInstalledModel("big-model", t.options);
    assert.equal(await exists(t.partial), false);
    assert.equal(await exists(`${t.partial}.json`), false);

    await assert.rejects(
      deleteInstalledModel("mine.gguf", t.options),
      (err) =>
        err instanceof InstalledModelError && err.code === "read_only_model" &&
        /GROVE_MODEL_PATH/.test(err.message),
    );
    assert.equal(await exists(join(t.shelf, "mine.gguf")), true);
    await assert.rejects(
      deleteInstalledModel("nope", t.options),
      (err) => err instanceof InstalledModelError && err.code === "model_not_found",
    );
    // With its store copy gone, stories260K is still here: the copy shipped with Grove, which
    // runs without a download and cannot be removed.
    const left = await listInstalledModels(t.options);
    assert.deepEqual(left.map((m) => [m.id, m.location]), [
      ["mine.gguf", "model-path"],
      ["stories260K", "embedded"],
    ]);
    assert.equal(left[1].path, new URL("./stories260K.gguf", import.meta.url).pathname);
    await assert.rejects(
      deleteInstalledModel("stories260K", t.options),
      (err) =>
        err instanceof InstalledModelError && err.code === "read_only_model" &&
        /ships with Grove/.test(err.message),
    );
    assert.deepEqual(
      (await listInstalledModels({ ...t.options, embedded: false })).map((m) => m.id),
      ["mine.gguf"],
    );
  } finally {
    await t.cleanup();
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
