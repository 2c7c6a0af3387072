import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { CATALOG } from "./catalog.ts";
import { readHashStore, sha256File } from "./download.ts";
import { resolveModel } from "./resolve.ts";

const SHIPPED = fileURLToPath(new URL("./stories260K.gguf", import.meta.url));
const noFetch: typeof fetch = () => Promise.reject(new Error("the test expected no download"));

Deno.test("the shipped stories260K.gguf is the catalog's file", async () => {
  const entry = CATALOG.find((e) => e.id === "stories260K")!;
  assert.equal(entry.embedded, "stories260K.gguf");
  assert.equal((await Deno.stat(SHIPPED)).size, entry.size);
  assert.equal(await sha256File(SHIPPED), entry.sha256);
});

Deno.test("stories260K resolves to the shipped copy with no model folder, an empty GROVE_HOME and no network", async () => {
  const home = await Deno.makeTempDir({ prefix: "grove-embedded-" });
  const saved = { path: Deno.env.get("GROVE_MODEL_PATH"), home: Deno.env.get("GROVE_HOME") };
  Deno.env.delete("GROVE_MODEL_PATH");
  Deno.env.set("GROVE_HOME", home);
  try {
    const found = await resolveModel("stories260K", { offline: true, fetch: noFetch });
    assert.equal(found.path, SHIPPED);
    assert.equal(found.downloaded, false);
    // Checked once against the catalog's sha256 and remembered, so later starts skip the hash.
    const store = await readHashStore(`${home}/models/hashes.json`);
    assert.equal(store.verified[SHIPPED]?.sha256, CATALOG[0].sha256);
    // Nothing was copied or downloaded into GROVE_HOME.
    const names = [...Deno.readDirSync(`${home}/models`)].map((e) => e.name);
    assert.deepEqual(names, ["hashes.json"]);
  } finally {
    if (saved.path === undefined) Deno.env.delete("GROVE_MODEL_PATH");
    else Deno.env.set("GROVE_MODEL_PATH", saved.path);
    if (saved.home === undefined) Deno.env.delete("GROVE_HOME");
    else Deno.env.set("GROVE_HOME", saved.home);
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a copy found first (GROVE_MODEL_PATH, GROVE_HOME) wins over the shipped one", async () => {
  const home = await Deno.makeTempDir({ prefix: "grove-embedded-" });
  const shelf = await Deno.makeTempDir({ prefix: "grove-shelf-" });
  try {
    await Deno.copyFile(SHIPPED, `${shelf}/stories260K.gguf`);
    const found = await resolveModel("stories260K", {
      groveHome: home,
      modelPath: [shelf],
      offline: true,
    });
    assert.equal(found.path, `${shelf}/stories260K.gguf`);
  } finally {
    await Deno.remove(home, { recursive: true });
    await Deno.remove(shelf, { recursive: true });
  }
});
