import assert from "node:assert/strict";
import { join } from "node:path";
import { findIn, fixturePath, MODEL_DIRS, STORIES } from "./fixtures.ts";

Deno.test("fixtures: a fixture is found in whichever folder of the path has it", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(b, "vocab"));
    await Deno.writeTextFile(join(b, "vocab", "x.gguf"), "");
    await Deno.writeTextFile(join(a, "both.gguf"), "");
    await Deno.writeTextFile(join(b, "both.gguf"), "");
    assert.equal(findIn([a, b], "vocab/x.gguf"), join(b, "vocab", "x.gguf"));
    assert.equal(findIn([a, b], "vocab"), join(b, "vocab"));
    assert.equal(findIn([a, b], "both.gguf"), join(a, "both.gguf"), "the first folder wins");
    assert.equal(findIn([a, b], "none.gguf"), join(a, "none.gguf"), "missing: named in the first");
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("fixtures: the shared fixtures are where GROVE_MODEL_PATH says", async () => {
  assert.ok(MODEL_DIRS.length > 0);
  assert.equal(fixturePath("stories260K.gguf"), STORIES);
  assert.ok((await Deno.stat(STORIES)).isFile, `${STORIES} is missing`);
});
