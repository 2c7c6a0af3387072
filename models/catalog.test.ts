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
import { modelConfigOf, openGguf } from "../inference/mod.ts";

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
  // An approximate size stands in only for a size nobody measured.
  assert.throws(() => validateCatalog([{ ...good, approxSize: 5 }]), /only where "size" is null/);
  assert.throws(
    () => validateCatalog([{ ...good, sha256: null, size: null, approxSize: 0.5 }]),
    /"approxSize" must be a positive integer/,
  );
  const kvCache = { layers: 2, kvHeads: 1, keyLength: 64, valueLength: 0 };
  assert.throws(() => validateCatalog([{ ...good, kvCache }]), /"kvCache.valueLength"/);
  assert.throws(() => validateCatalog([{ ...good, kvCache: "big" }]), /"kvCache.layers"/);
});

Deno.test("catalog: every entry records its KV cache's shape, and stories260K's is its header's", async () => {
  for (const entry of CATALOG) {
    assert.ok(entry.kvCache, `${entry.id} has no kvCache`);
    assert.ok(entry.contextLength, `${entry.id} has no contextLength`);
    // Without a measured size, an approximate one still lets the catalog say what it needs.
    assert.ok(entry.size !== null || entry.approxSize !== undefined, entry.id);
  }
  const stories = findCatalogEntry("stories260K")!;
  const config = modelConfigOf(await openGguf(STORIES));
  assert.deepEqual(stories.kvCache, {
    layers: config.layers,
    kvHeads: config.kvHeads,
    keyLength: config.headDim,
    valueLength: config.valueDim,
  });
  assert.equal(stories.contextLength, config.contextLength);
});

Deno.test("catalog: real models of each family issue 15 adds, the mixture-of-experts ones among them", () => {
  const archs = new Set(CATALOG.map((e) => e.architecture));
  const families = [
    "llama",
    "qwen2",
    "qwen3",
    "qwen3moe",
    "qwen2moe",
    "qwen35moe",
    "gemma3",
    "phi3",
  ];
  for (const arch of [...families, "gpt-oss"]) assert.ok(archs.has(arch), arch);
  // The reference MoE of the issue, in both of its published 4-bit forms.
  const q30 = CATALOG.filter((e) => e.architecture === "qwen3moe").map((e) => e.quantization);
  assert.deepEqual(q30.sort(), ["IQ4_XS", "Q4_K_M"]);
  assert.equal(findCatalogEntry("qwen3.5-35b-a3b-iq4_xs")?.quantization, "IQ4_XS");
  assert.equal(findCatalogEntry("gpt-oss-20b-mxfp4")?.quantization, "MXFP4");
});
