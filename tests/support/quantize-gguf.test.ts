import assert from "node:assert/strict";
import { GgmlType } from "../../inference/mod.ts";
import { type GgufFile, openGguf, readTensorData } from "../../inference/mod.ts";
import { dequantize } from "../../inference/mod.ts";
import { quantizeGguf, targetTypeFor } from "./quantize-gguf.ts";
import { writeTestModel } from "./test-models.ts";
import { STORIES } from "./fixtures.ts";

const dir = await Deno.makeTempDir({ prefix: "grove-quantize-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

async function values(f: GgufFile, name: string): Promise<Float32Array> {
  const t = f.tensor(name)!;
  return dequantize(t.type, await readTensorData(f, t), t.dims.reduce((a, b) => a * b, 1));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("fallbacks follow the row length", () => {
  assert.equal(targetTypeFor(GgmlType.Q4_K, 512), GgmlType.Q4_K);
  assert.equal(targetTypeFor(GgmlType.Q4_K, 64), GgmlType.Q8_0);
  assert.equal(targetTypeFor(GgmlType.Q6_K, 172), GgmlType.F32);
  assert.equal(targetTypeFor(GgmlType.Q4_0, 172), GgmlType.F32);
  assert.equal(targetTypeFor(GgmlType.F16, 172), GgmlType.F16);
  // The types of issue 15, as llama.cpp's quantizer falls back.
  assert.equal(targetTypeFor(GgmlType.Q2_K, 64), GgmlType.Q4_0);
  assert.equal(targetTypeFor(GgmlType.Q3_K, 64), GgmlType.Q4_0);
  assert.equal(targetTypeFor(GgmlType.IQ4_XS, 64), GgmlType.IQ4_NL);
  assert.equal(targetTypeFor(GgmlType.IQ4_XS, 172), GgmlType.F32);
  assert.equal(targetTypeFor(GgmlType.MXFP4, 96), GgmlType.MXFP4);
});

Deno.test("stories260K to Q8_0: matrices quantized, the rest kept, values close", async () => {
  const out = `${dir}/stories-q8.gguf`;
  const report = await quantizeGguf(STORIES, out, "Q8_0");
  const [src, dst] = [await openGguf(STORIES), await openGguf(out)];
  assert.equal(report.length, src.tensors.length);
  assert.equal(dst.metadata["general.file_type"], 7);
  assert.equal(dst.metadata["general.quantization_version"], 2);
  assert.deepEqual(dst.metadata["tokenizer.ggml.tokens"], src.metadata["tokenizer.ggml.tokens"]);
  for (const t of dst.tensors) {
    const want = t.dims.length === 1 || t.dims[0] === 172 ? GgmlType.F32 : GgmlType.Q8_0;
    assert.equal(t.type, want, t.name);
    assert.deepEqual(t.dims, src.tensor(t.name)!.dims);
  }
  const name = "blk.2.attn_q.weight";
  const [a, b] = [await values(src, name), await values(dst, name)];
  const scale = Math.max(...a.map(Math.abs));
  assert.ok(maxAbsDiff(a, b) < scale / 100, "Q8_0 stays within 1% of the largest weight");
  assert.deepEqual(
    await values(dst, "output_norm.weight"),
    await values(src, "output_norm.weight"),
  );
});

Deno.test("stories260K to Q4_K falls back to Q8_0 for 64-wide rows", async () => {
  const out = `${dir}/stories-q4k.gguf`;
  const report = await quantizeGguf(STORIES, out, GgmlType.Q4_K);
  const dst = await openGguf(out);
  assert.equal(dst.metadata["general.file_type"], 14);
  assert.equal(dst.tensor("token_embd.weight")!.type, GgmlType.Q8_0);
  assert.equal(dst.tensor("blk.0.ffn_down.weight")!.type, GgmlType.F32);
  assert.ok(report.some((r) => r.name === "output.weight" && r.to === GgmlType.Q8_0));
});

Deno.test("a 256-wide model re-quantizes from Q8_0 to Q6_K through f32", async () => {
  const f32Path = `${dir}/m-f32.gguf`, q8Path = `${dir}/m-q8.gguf`, q6Path = `${dir}/m-q6.gguf`;
  const o = {
    arch: "qwen3" as const,
    dim: 256,
    layers: 1,
    heads: 4,
    kvHeads: 2,
    ffn: 256,
    seed: 5,
  };
  await writeTestModel(f32Path, { ...o, type: GgmlType.F32 });
  await quantizeGguf(f32Path, q8Path, "q8_0");
  await quantizeGguf(q8Path, q6Path, "Q6_K");
  const [f32, q6] = [await openGguf(f32Path), await openGguf(q6Path)];
  for (const t of q6.tensors) {
    assert.equal(t.type, t.dims.length === 2 ? GgmlType.Q6_K : GgmlType.F32, t.name);
  }
  assert.equal(q6.metadata["general.file_type"], 18);
  const name = "blk.0.ffn_up.weight";
  const [a, b] = [await values(f32, name), await values(q6, name)];
  const scale = Math.max(...a.map(Math.abs));
  assert.ok(maxAbsDiff(a, b) < scale / 20, "two roundings stay within 5% of the largest weight");
});

Deno.test("refuses an unknown target type", async () => {
  await assert.rejects(
    quantizeGguf(STORIES, `${dir}/x.gguf`, "IQ2_XXS"),
    /unknown target type "IQ2_XXS"/,
  );
});
