import assert from "node:assert/strict";
import { GgmlType } from "../../inference/mod.ts";
import { GgufValueType as V, openGguf, readTensorData } from "../../inference/mod.ts";
import { configFromMetadata } from "../../inference/mod.ts";
import { llamaReference } from "./llama-reference.ts";
import {
  parseTestModelArgs,
  type TestArch,
  type TestModelOptions,
  writeTestModel,
} from "./test-models.ts";

const dir = await Deno.makeTempDir({ prefix: "grove-test-models-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const small = (arch: TestArch, over: Partial<TestModelOptions> = {}): TestModelOptions => ({
  arch,
  type: GgmlType.F32,
  dim: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 96,
  seed: 1,
  ...over,
});

async function build(name: string, o: TestModelOptions) {
  const path = `${dir}/${name}.gguf`;
  await writeTestModel(path, o);
  return await openGguf(path);
}

function stats(values: Float32Array): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const v = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(v) };
}

Deno.test("each architecture has llama.cpp's tensors, shapes and metadata", async () => {
  for (const arch of ["llama", "qwen2", "qwen3"] as const) {
    const headDim = arch === "qwen3" ? 32 : undefined; // qwen3 with q width 128 != dim 64
    const f = await build(arch, small(arch, { headDim }));
    const hd = headDim ?? 16;
    const shape = (name: string) => f.tensor(name)?.dims;
    assert.deepEqual(shape("token_embd.weight"), [64, 512]);
    assert.deepEqual(shape("output.weight"), [64, 512]);
    assert.deepEqual(shape("output_norm.weight"), [64]);
    assert.deepEqual(shape("blk.1.attn_q.weight"), [64, 4 * hd]);
    assert.deepEqual(shape("blk.1.attn_k.weight"), [64, 2 * hd]);
    assert.deepEqual(shape("blk.1.attn_v.weight"), [64, 2 * hd]);
    assert.deepEqual(shape("blk.1.attn_output.weight"), [4 * hd, 64]);
    assert.deepEqual(shape("blk.1.ffn_gate.weight"), [64, 96]);
    assert.deepEqual(shape("blk.1.ffn_up.weight"), [64, 96]);
    assert.deepEqual(shape("blk.1.ffn_down.weight"), [96, 64]);
    assert.deepEqual(shape("blk.0.attn_norm.weight"), [64]);
    assert.deepEqual(shape("blk.0.ffn_norm.weight"), [64]);
    assert.deepEqual(shape("blk.0.attn_q.bias"), arch === "qwen2" ? [4 * hd] : undefined);
    assert.deepEqual(shape("blk.0.attn_k.bias"), arch === "qwen2" ? [2 * hd] : undefined);
    assert.deepEqual(shape("blk.0.attn_v.bias"), arch === "qwen2" ? [2 * hd] : undefined);
    assert.deepEqual(shape("blk.0.attn_q_norm.weight"), arch === "qwen3" ? [hd] : undefined);
    assert.deepEqual(shape("blk.0.attn_k_norm.weight"), arch === "qwen3" ? [hd] : undefined);
    const perLayer = { llama: 9, qwen2: 12, qwen3: 11 }[arch];
    assert.equal(f.tensors.length, 3 + 2 * perLayer);

    const m = f.metadata;
    assert.equal(m["general.architecture"], arch);
    assert.equal(m["general.file_type"], 0);
    assert.equal(f.metadataKinds[`${arch}.rope.freq_base`].type, V.F32);
    assert.equal(f.metadataKinds[`${arch}.attention.layer_norm_rms_epsilon`].type, V.F32);
    assert.equal(f.metadataKinds[`${arch}.block_count`].type, V.U32);
    assert.equal((m["tokenizer.ggml.tokens"] as string[]).length, 512);
    assert.equal(m["tokenizer.ggml.model"], "llama");
    assert.equal(m["tokenizer.ggml.bos_token_id"], 1);

    // The lead's config reader sees the shape that was asked for.
    const c = configFromMetadata(m, 512);
    assert.deepEqual(
      [c.dim, c.layers, c.heads, c.kvHeads, c.headDim, c.ffn, c.ropeDim, c.qkvBias, c.qkNorm],
      [64, 2, 4, 2, hd, 96, hd, arch === "qwen2", arch === "qwen3"],
    );
    assert.equal(c.ropeStyle, arch === "llama" ? "normal" : "neox");
  }
});

Deno.test("weights are drawn at the planned scales", async () => {
  const f = await build("scales", small("llama"));
  const values = async (name: string) =>
    new Float32Array((await readTensorData(f, f.tensor(name)!)).buffer);
  const q = stats(await values("blk.0.attn_q.weight"));
  assert.ok(Math.abs(q.mean) < 0.01 && Math.abs(q.std - 1 / 8) < 0.01, `attn_q ${q.std}`);
  const e = stats(await values("token_embd.weight"));
  assert.ok(Math.abs(e.std - 1) < 0.05, `token_embd std ${e.std}`);
  const norm = stats(await values("blk.1.ffn_norm.weight"));
  assert.ok(Math.abs(norm.mean - 1) < 0.05 && norm.std < 0.15, `norm ${norm.mean} ${norm.std}`);
  assert.notDeepEqual(await values("blk.0.attn_q.weight"), await values("blk.1.attn_q.weight"));
});

Deno.test("the same options give the same bytes; another seed does not", async () => {
  const o = small("qwen2", { type: GgmlType.Q8_0 });
  await writeTestModel(`${dir}/a.gguf`, o);
  await writeTestModel(`${dir}/b.gguf`, o);
  await writeTestModel(`${dir}/c.gguf`, { ...o, seed: 2 });
  const [a, b, c] = await Promise.all(
    ["a", "b", "c"].map((n) => Deno.readFile(`${dir}/${n}.gguf`)),
  );
  assert.ok(a.length === b.length && a.every((x, i) => x === b[i]), "rebuild differs");
  assert.equal(c.length, a.length);
  assert.ok(a.some((x, i) => x !== c[i]), "seed 2 gave the same file as seed 1");
});

Deno.test("every weight type: matrices in that type, norms and biases in F32", async () => {
  const types = [
    GgmlType.F16,
    GgmlType.BF16,
    GgmlType.Q8_0,
    GgmlType.Q4_0,
    GgmlType.Q4_K,
    GgmlType.Q5_K,
    GgmlType.Q6_K,
  ];
  for (const type of types) {
    const o = small("qwen2", { type, dim: 256, layers: 1, heads: 4, kvHeads: 1, ffn: 256 });
    const f = await build(`type-${type}`, o);
    for (const t of f.tensors) {
      const expected = t.dims.length === 2 ? type : GgmlType.F32;
      assert.equal(t.type, expected, `${t.name} in a ${GgmlType[type]} model`);
    }
    const quantized = type !== GgmlType.F16 && type !== GgmlType.BF16;
    assert.equal(f.metadata["general.quantization_version"], quantized ? 2 : undefined);
  }
});

Deno.test("tied embeddings drop output.weight", async () => {
  const f = await build("tied", small("qwen3", { tiedEmbeddings: true }));
  assert.equal(f.tensor("output.weight"), undefined);
  assert.ok(f.tensor("token_embd.weight"));
});

Deno.test("refuses shapes the weight type or attention cannot hold", async () => {
  await assert.rejects(
    writeTestModel(`${dir}/x.gguf`, small("llama", { type: GgmlType.Q4_K })),
    /Q4_K needs row lengths that are multiples of 256: dim is 64/,
  );
  await assert.rejects(
    writeTestModel(`${dir}/x.gguf`, small("llama", { type: GgmlType.Q8_0, ffn: 80 })),
    /multiples of 32: ffn is 80/,
  );
  await assert.rejects(
    writeTestModel(`${dir}/x.gguf`, small("llama", { kvHeads: 3 })),
    /heads \(4\) must be a multiple of kv heads \(3\)/,
  );
  await assert.rejects(
    writeTestModel(`${dir}/x.gguf`, small("qwen2", { headDim: 32 })),
    /qwen2 needs headDim = dim \/ heads \(16\), got 32/,
  );
});

Deno.test("CLI flags parse into options", () => {
  const o = parseTestModelArgs(
    "--arch qwen3 --type q4_k --dim 256 --heads 4 --kv-heads 2 --ffn 512 --head-dim 128 --tied --out m.gguf"
      .split(" "),
  );
  assert.deepEqual(
    [o.arch, o.type, o.dim, o.heads, o.kvHeads, o.ffn, o.headDim, o.tiedEmbeddings, o.out],
    ["qwen3", GgmlType.Q4_K, 256, 4, 2, 512, 128, true, "m.gguf"],
  );
  assert.throws(() => parseTestModelArgs(["--dim", "64"]), /missing --out/);
});

Deno.test("llama.cpp loads each architecture and greedy decoding wanders", async () => {
  const cases: [string, TestModelOptions][] = [
    ["llama", small("llama")],
    ["qwen2", small("qwen2")],
    ["qwen3", small("qwen3", { headDim: 32 })],
    [
      "qwen3-tied-q4k",
      small("qwen3", { type: GgmlType.Q4_K, dim: 256, ffn: 256, tiedEmbeddings: true }),
    ],
  ];
  for (const [name, o] of cases) {
    const path = `${dir}/llama-cpp-${name}.gguf`;
    await writeTestModel(path, o);
    const r = await llamaReference(path, { promptTokens: [1], steps: 24, topN: 1 });
    const distinct = new Set(r.tokens).size;
    assert.ok(distinct >= 10, `${name}: only ${distinct} distinct tokens in ${r.tokens.join(" ")}`);
  }
});
