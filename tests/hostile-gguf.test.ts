/**
 * A GGUF whose metadata lies about its shape is refused before anything is planned or allocated
 * (issue 9, finding 11): `block_count` 1e6 used to take 7–11 s and 2 GB before an error, 1e8
 * killed the process out of memory. The files here are stories260K with one metadata value
 * changed, so everything else about them is real.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createCpuEngine,
  type GgufFile,
  modelConfigOf,
  openGguf,
  readTensorData,
} from "../inference/mod.ts";
import { f32, i32, type MetaValue, typedMetadata, u32, writeGguf } from "./support/gguf-writer.ts";
import { runGrove, STORIES } from "./helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "grove-hostile-gguf-" });
const source = await openGguf(STORIES);

/** stories260K with `changes` applied to its metadata (undefined deletes a key). */
async function hostile(name: string, changes: Record<string, MetaValue | undefined>) {
  const metadata = typedMetadata(source);
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete metadata[key];
    else metadata[key] = value;
  }
  const path = join(dir, `${name}.gguf`);
  await writeGguf(path, {
    metadata,
    tensors: source.tensors.map((t) => ({ ...t, data: () => readTensorData(source, t) })),
  });
  return path;
}

async function configError(path: string): Promise<string> {
  const file: GgufFile = await openGguf(path);
  const started = performance.now();
  let message = "";
  try {
    modelConfigOf(file);
  } catch (e) {
    message = (e as Error).message;
  }
  assert.notEqual(message, "", `${path} was accepted`);
  // The check walks the tensor directory once; no plan, no allocation sized by the metadata.
  assert.ok(performance.now() - started < 1000, "the refusal must not scale with block_count");
  return message;
}

Deno.test("hostile GGUF: block_count 1e6 and 1e8 are refused before any plan", async () => {
  for (const n of [1_000_000, 100_000_000]) {
    const path = await hostile(`blocks-${n}`, { "llama.block_count": u32(n) });
    const message = await configError(path);
    assert.match(message, /block_count" is \d+; expected a whole number from 1 to 4096/);
  }
  // Within the bounds but still more than the file holds: the directory decides.
  const path = await hostile("blocks-6", { "llama.block_count": u32(6) });
  assert.match(
    await configError(path),
    /metadata says llama\.block_count is 6, but the file holds tensors for 5 layers/,
  );
  const fewer = await hostile("blocks-4", { "llama.block_count": u32(4) });
  assert.match(await configError(fewer), /holds tensors for 5 layers \(including blk\.4\)/);
});

Deno.test("hostile GGUF: zero, negative, fractional and mismatched sizes name the key", async () => {
  const cases: [string, Record<string, MetaValue | undefined>, RegExp][] = [
    ["heads-0", { "llama.attention.head_count": u32(0) }, /head_count" is 0/],
    ["ctx-negative", { "llama.context_length": i32(-5) }, /context_length" is -5/],
    ["eps-nan", { "llama.attention.layer_norm_rms_epsilon": f32(NaN) }, /epsilon" is NaN/],
    ["ffn-huge", { "llama.feed_forward_length": u32(4_000_000_000) }, /feed_forward_length/],
    ["rope-odd", { "llama.rope.dimension_count": u32(7) }, /dimension_count" is 7; must be even/],
    ["dim-mismatch", { "llama.embedding_length": u32(128) }, /embedding width is 128/],
    ["no-layers", { "llama.block_count": undefined }, /lacks "llama\.block_count"/],
  ];
  for (const [name, changes, expected] of cases) {
    assert.match(await configError(await hostile(name, changes)), expected, name);
  }
});

Deno.test("hostile GGUF: the engine refuses it, and the honest file still loads", async () => {
  const path = await hostile("blocks-1e6-engine", { "llama.block_count": u32(1_000_000) });
  await assert.rejects(createCpuEngine({ path, ctxSize: 64 }), /block_count" is 1000000/);
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 64 });
  assert.equal(engine.config.layers, 5);
});

Deno.test("hostile GGUF: `generate` exits at once with an error naming the key", async () => {
  const path = await hostile("blocks-1e8-cli", { "llama.block_count": u32(100_000_000) });
  const started = performance.now();
  const result = await runGrove(["generate", "--model", path, "-n", "4"]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /block_count" is 100000000; expected a whole number from 1 to 4096/);
  // Bounded by process start-up (seconds), not by the claimed size (1e8 used to abort after 54 s).
  assert.ok(performance.now() - started < 30_000);
});

Deno.test("hostile GGUF: clean up", async () => {
  await Deno.remove(dir, { recursive: true });
});
