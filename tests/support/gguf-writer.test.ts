import assert from "node:assert/strict";
import { GgmlType, GgufValueType as V, openGguf, readTensorData } from "../../inference/mod.ts";
import {
  arr,
  bool,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  type MetaValue,
  str,
  type TensorSpec,
  typedMetadata,
  u16,
  u32,
  u64,
  u8,
  writeGguf,
} from "./gguf-writer.ts";
import { STORIES } from "./fixtures.ts";

const dir = await Deno.makeTempDir({ prefix: "grove-writer-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
}

Deno.test("metadata of every type round-trips through the reader", async () => {
  const path = `${dir}/meta.gguf`;
  await writeGguf(path, {
    metadata: {
      "t.u8": u8(250),
      "t.i8": i8(-100),
      "t.u16": u16(65535),
      "t.i16": i16(-30000),
      "t.u32": u32(4000000000),
      "t.i32": i32(-2000000000),
      "t.u64": u64(2n ** 63n + 5n),
      "t.i64": i64(-(2n ** 62n)),
      "t.f32": f32(10000),
      "t.f64": f64(Math.PI),
      "t.bool": bool(false),
      "t.str": str("ünïcode ✓"),
      "t.arr_u16": arr(V.U16, [1, 2, 65535]),
      "p.string": "plain",
      "p.bool": true,
      "p.int": 7,
      "p.negative": -7,
      "p.float": 1e-5,
      "p.bigint": 2n ** 40n,
      "p.strings": ["<unk>", "<s>", "", "▁a"],
      "p.ints": [1, 3, 2],
      "p.floats": [0, -1.5],
      "p.f32array": new Float32Array([0.25, -2]),
      "p.i32array": new Int32Array([-1, 5]),
      "p.nested": [["a"], [u8(3), u8(4)]],
      "p.empty": arr(V.STRING, []),
    },
    tensors: [],
  });
  const f = await openGguf(path);
  const m = f.metadata;
  const k = (key: string) => f.metadataKinds[key].type;
  const item = (key: string) => f.metadataKinds[key].item?.type;
  assert.deepEqual(
    [m["t.u8"], m["t.i8"], m["t.u16"], m["t.i16"], m["t.u32"], m["t.i32"]],
    [250, -100, 65535, -30000, 4000000000, -2000000000],
  );
  assert.equal(m["t.u64"], 2n ** 63n + 5n);
  assert.equal(m["t.i64"], -(2n ** 62n));
  assert.equal(k("t.f32"), V.F32, "f32() keeps a whole float a float");
  assert.equal(m["t.f32"], 10000);
  assert.equal(m["t.f64"], Math.PI);
  assert.equal(m["t.bool"], false);
  assert.equal(m["t.str"], "ünïcode ✓");
  assert.deepEqual([m["t.arr_u16"], item("t.arr_u16")], [[1, 2, 65535], V.U16]);
  assert.deepEqual([k("p.string"), k("p.bool"), k("p.int"), k("p.negative")], [
    V.STRING,
    V.BOOL,
    V.U32,
    V.I32,
  ]);
  assert.equal(k("p.float"), V.F32);
  assert.ok(Math.abs((m["p.float"] as number) - 1e-5) < 1e-12);
  assert.deepEqual([k("p.bigint"), m["p.bigint"]], [V.U64, 2 ** 40]);
  assert.deepEqual([m["p.strings"], item("p.strings")], [["<unk>", "<s>", "", "▁a"], V.STRING]);
  assert.deepEqual([m["p.ints"], item("p.ints")], [[1, 3, 2], V.I32]);
  assert.deepEqual([m["p.floats"], item("p.floats")], [[0, -1.5], V.F32]);
  assert.deepEqual([m["p.f32array"], item("p.f32array")], [[0.25, -2], V.F32]);
  assert.deepEqual([m["p.i32array"], item("p.i32array")], [[-1, 5], V.I32]);
  assert.deepEqual(m["p.nested"], [["a"], [3, 4]]);
  assert.deepEqual([m["p.empty"], item("p.empty")], [[], V.STRING]);
});

Deno.test("tensors of several types round-trip, aligned, with lazy data", async () => {
  for (const alignment of [32, 64]) {
    const path = `${dir}/tensors-${alignment}.gguf`;
    const specs: TensorSpec[] = [
      { name: "a", dims: [3], type: GgmlType.F32, data: bytes(12, 1) },
      { name: "b", dims: [5, 3], type: GgmlType.F16, data: () => bytes(30, 2) },
      { name: "c", dims: [64, 2], type: GgmlType.Q8_0, data: () => Promise.resolve(bytes(136, 3)) },
      { name: "d", dims: [256, 1, 1, 2], type: GgmlType.Q4_K, data: bytes(288, 4) },
    ];
    const metadata: Record<string, MetaValue> = alignment === 32
      ? {}
      : { "general.alignment": alignment };
    await writeGguf(path, { metadata, tensors: specs });
    const f = await openGguf(path);
    assert.equal(f.alignment, alignment);
    assert.deepEqual(f.tensors.map((t) => [t.name, t.dims, t.type, t.byteLength]), [
      ["a", [3], GgmlType.F32, 12],
      ["b", [5, 3], GgmlType.F16, 30],
      ["c", [64, 2], GgmlType.Q8_0, 136],
      ["d", [256, 1, 1, 2], GgmlType.Q4_K, 288],
    ]);
    for (const [i, t] of f.tensors.entries()) {
      assert.equal(t.offset % alignment, 0, `${t.name} is aligned to ${alignment}`);
      assert.deepEqual(await readTensorData(f, t), bytes(t.byteLength, i + 1));
    }
  }
});

Deno.test("stories260K copied through typedMetadata is byte-identical", async () => {
  const src = await openGguf(STORIES);
  const path = `${dir}/copy.gguf`;
  await writeGguf(path, {
    metadata: typedMetadata(src),
    tensors: src.tensors.map((t) => ({ ...t, data: () => readTensorData(src, t) })),
  });
  const [a, b] = await Promise.all([Deno.readFile(src.path), Deno.readFile(path)]);
  assert.equal(b.length, a.length);
  assert.ok(a.every((x, i) => x === b[i]), "the copy differs from the original");
});

Deno.test("refuses bad tensors and values, leaving no file behind", async () => {
  const path = `${dir}/bad.gguf`;
  const write = (contents: Parameters<typeof writeGguf>[1]) => writeGguf(path, contents);
  const t = (over: Partial<TensorSpec>): TensorSpec => ({
    name: "w",
    dims: [4],
    type: GgmlType.F32,
    data: bytes(16, 0),
    ...over,
  });
  await assert.rejects(
    write({ metadata: {}, tensors: [t({ data: () => bytes(15, 0) })] }),
    /tensor "w": got 15 bytes, but F32 \[4\] takes 16/,
  );
  await assert.rejects(write({ metadata: {}, tensors: [t({}), t({})] }), /duplicate tensor name/);
  await assert.rejects(
    write({ metadata: {}, tensors: [t({ dims: [48, 2], type: GgmlType.Q4_K })] }),
    /tensor "w" \[48, 2\]: 48 values of Q4_K do not fill whole blocks of 256/,
  );
  await assert.rejects(write({ metadata: { k: u32(-1) }, tensors: [] }), /"k".*not a valid U32/);
  await assert.rejects(write({ metadata: { k: u8(1.5) }, tensors: [] }), /not a valid U8/);
  await assert.rejects(write({ metadata: { k: [] }, tensors: [] }), /empty array needs/);
  await assert.rejects(
    write({ metadata: { k: ["a", true] }, tensors: [] }),
    /mixes STRING and BOOL/,
  );
  await assert.rejects(
    write({ metadata: { "general.alignment": 24 }, tensors: [] }),
    /power of two, got 24/,
  );
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("bad"));
  assert.deepEqual(left, []);
});

Deno.test("metadata far beyond the header buffer (a 32000-token vocabulary) is written whole", async () => {
  const tokens = Array.from({ length: 32000 }, (_, i) => `token-${i}-▁`);
  const path = `${dir}/big-vocab.gguf`;
  await writeGguf(path, {
    metadata: { "tokenizer.ggml.tokens": arr(V.STRING, tokens), "general.name": "big" },
    tensors: [],
  });
  const file = await openGguf(path);
  assert.deepEqual(file.metadata["tokenizer.ggml.tokens"], tokens);
  assert.equal(file.metadata["general.name"], "big");
});
