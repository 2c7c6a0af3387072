import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { findCatalogEntry } from "./catalog.ts";
import { fileSha256, type HashProgress, modelSha256 } from "./file-sha256.ts";
import { resolveModel } from "./resolve.ts";
import { MODELS_DIR, STORIES } from "../tests/support/fixtures.ts";

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** 3.5 MiB that differ from any other run's. */
function someBytes(seed: number): Uint8Array {
  const bytes = new Uint8Array(3.5 * 1024 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 12)) & 0xff;
  return bytes;
}

Deno.test("fileSha256: hashes in chunks with progress, then answers from the store by size and mtime", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "model.gguf");
    const first = someBytes(1);
    await Deno.writeFile(path, first);
    const progress: HashProgress[] = [];
    const cacheDir = join(dir, "cache");
    assert.equal(
      await fileSha256(path, { cacheDir, onProgress: (p) => progress.push(p) }),
      sha(first),
    );
    assert.ok(progress.length >= 4, `read in chunks, not whole: ${progress.length} reports`);
    assert.deepEqual(progress.at(-1), {
      path,
      hashed: first.length,
      total: first.length,
      done: true,
    });
    const store = JSON.parse(await Deno.readTextFile(join(cacheDir, "hashes.json")));
    assert.equal(store.verified[path].sha256, sha(first));
    assert.deepEqual(store.trusted, {}, "a hashed file is no trust-on-first-use record");

    // Same size and mtime: the store answers, even for other bytes (which proves nothing was read).
    const mtime = (await Deno.stat(path)).mtime!;
    const second = someBytes(2);
    await Deno.writeFile(path, second);
    await Deno.utime(path, mtime, mtime);
    progress.length = 0;
    const cached = await fileSha256(path, { cacheDir, onProgress: (p) => progress.push(p) });
    assert.equal(cached, sha(first));
    assert.equal(progress.length, 0);

    // A new mtime: read again.
    await Deno.utime(path, mtime, new Date(mtime.getTime() + 5000));
    assert.equal(await fileSha256(path, { cacheDir }), sha(second));
    // A relative path is the same file: keyed by its absolute path, so the store answers.
    const never = { cacheDir, onProgress: () => assert.fail("read again") };
    assert.equal(await fileSha256(relative(Deno.cwd(), path), never), sha(second));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fileSha256: stories260K hashes to the catalog's sha256; a folder is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const entry = findCatalogEntry("stories260K")!;
    assert.equal(await fileSha256(STORIES, { cacheDir: dir }), entry.sha256);
    await assert.rejects(fileSha256(dir, { cacheDir: dir }), /is not a file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("modelSha256: a checked catalog model's hash is the catalog's, read from no file", async () => {
  const home = await Deno.makeTempDir();
  try {
    const entry = findCatalogEntry("stories260K")!;
    const options = { groveHome: home, modelPath: [MODELS_DIR], offline: true };
    const catalog = await resolveModel("stories260K", options);
    const cacheDir = join(home, "models");
    const never = { cacheDir, onProgress: () => assert.fail("the catalog model was read again") };
    assert.equal(await modelSha256(catalog, never), entry.sha256);
    // A path has no catalog entry: hashed (resolveModel already checked this very file, so the
    // store has it; a fresh store reads it).
    const byPath = await resolveModel(STORIES, options);
    assert.equal(byPath.entry, undefined);
    assert.equal(await modelSha256(byPath, never), entry.sha256);
    const fresh = join(home, "fresh");
    let reads = 0;
    assert.equal(
      await modelSha256(byPath, { cacheDir: fresh, onProgress: () => void reads++ }),
      entry.sha256,
    );
    assert.ok(reads > 0);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
