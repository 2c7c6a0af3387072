import assert from "node:assert/strict";
import {
  CATALOG,
  catalogFileName,
  catalogIds,
  DEFAULT_MODEL_ID,
  findCatalogEntry,
  validateCatalog,
} from "./catalog.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { sha256File } from "./download.ts";

Deno.test("catalog: stories260K comes first and is the default", () => {
  assert.equal(DEFAULT_MODEL_ID, "stories260K");
  const first = CATALOG[0];
  assert.equal(first.id, "stories260K");
  assert.equal(first.architecture, "llama");
  assert.equal(first.quantization, "F32");
  assert.equal(first.size, 1185376);
  assert.equal(catalogFileName(first), "stories260K.gguf");
});

Deno.test("catalog: the real stories260K.gguf matches the catalog's sha256 and size", async () => {
  const entry = findCatalogEntry("stories260K")!;
  const path = STORIES;
  assert.equal((await Deno.stat(path)).size, entry.size);
  assert.equal(await sha256File(path), entry.sha256);
});

Deno.test("catalog: every entry is a Hugging Face GGUF with a unique id", () => {
  const ids = catalogIds();
  assert.equal(new Set(ids.map((id) => id.toLowerCase())).size, ids.length);
  for (const entry of CATALOG) {
    assert.match(entry.url, /^https:\/\/huggingface\.co\/[^/]+\/[^/]+\/resolve\/[^/]+\/.+\.gguf$/);
    assert.ok(entry.sha256 === null || /^[0-9a-f]{64}$/.test(entry.sha256), entry.id);
    // A hash without its size (or the reverse) would mean half-checked knowledge.
    assert.equal(entry.sha256 === null, entry.size === null, entry.id);
  }
  assert.ok(CATALOG.length >= 4, "a few real chat models besides stories260K");
});

Deno.test("catalog: lookups are exact first, then case-insensitive", () => {
  assert.equal(findCatalogEntry("STORIES260k")?.id, "stories260K");
  assert.equal(findCatalogEntry("no-such-model"), undefined);
});

Deno.test("catalog: validateCatalog rejects malformed entries", () => {
  const good = { ...CATALOG[0] };
  assert.throws(() => validateCatalog({}), /expected an array/);
  assert.throws(() => validateCatalog([good, { ...good }]), /duplicate id "stories260K"/);
  assert.throws(() => validateCatalog([{ ...good, sha256: "ABC" }]), /64 lowercase hex/);
  assert.throws(() => validateCatalog([{ ...good, size: -1 }]), /"size"/);
  assert.throws(() => validateCatalog([{ ...good, url: "http://x/y.gguf" }]), /https URL/);
  assert.throws(() => validateCatalog([{ ...good, name: "" }]), /"name" must be/);
  assert.equal(validateCatalog([{ ...good, sha256: null, size: null }]).length, 1);
});
