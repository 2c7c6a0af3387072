import assert from "node:assert/strict";
import { GgmlType } from "./ggml-type.ts";
import { GgufError, GgufValueType as V, openGguf, readTensorData } from "./gguf.ts";
import { fixturePath, STORIES } from "../tests/support/fixtures.ts";

/** Hand-assembles GGUF bytes, independent of the project's writer. */
class Bytes {
  private out: number[] = [];
  private put(n: number, set: (v: DataView) => void) {
    const v = new DataView(new ArrayBuffer(n));
    set(v);
    this.out.push(...new Uint8Array(v.buffer));
    return this;
  }
  raw(bytes: number[]) {
    this.out.push(...bytes);
    return this;
  }
  u8 = (x: number) => this.put(1, (v) => v.setUint8(0, x));
  u32 = (x: number) => this.put(4, (v) => v.setUint32(0, x, true));
  i32 = (x: number) => this.put(4, (v) => v.setInt32(0, x, true));
  f32 = (x: number) => this.put(4, (v) => v.setFloat32(0, x, true));
  u64 = (x: number | bigint) => this.put(8, (v) => v.setBigUint64(0, BigInt(x), true));
  i64 = (x: bigint) => this.put(8, (v) => v.setBigInt64(0, x, true));
  str(s: string) {
    const b = new TextEncoder().encode(s);
    return this.u64(b.length).raw([...b]);
  }
  header(version: number, tensors: number, kvs: number) {
    return this.raw([0x47, 0x47, 0x55, 0x46]).u32(version).u64(tensors).u64(kvs);
  }
  tensor(name: string, dims: number[], type: number, offset: number) {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  padTo(alignment: number) {
    while (this.out.length % alignment) this.out.push(0);
    return this;
  }
  get length() {
    return this.out.length;
  }
  bytes() {
    return new Uint8Array(this.out);
  }
}

const dir = await Deno.makeTempDir({ prefix: "grove-gguf-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
let fileNo = 0;
async function write(bytes: Uint8Array | Bytes): Promise<string> {
  const path = `${dir}/f${fileNo++}.gguf`;
  await Deno.writeFile(path, bytes instanceof Bytes ? bytes.bytes() : bytes);
  return path;
}

/** One F32 [4, 2] tensor "w" holding 0..7, with `general.alignment` when given. */
function validFile(alignment?: number): Bytes {
  const b = new Bytes().header(3, 1, alignment ? 2 : 1);
  b.str("general.architecture").u32(V.STRING).str("llama");
  if (alignment) b.str("general.alignment").u32(V.U32).u32(alignment);
  b.tensor("w", [4, 2], GgmlType.F32, 0).padTo(alignment ?? 32);
  for (let i = 0; i < 8; i++) b.f32(i);
  return b;
}

async function rejects(bytes: Uint8Array | Bytes, pattern: RegExp): Promise<void> {
  const path = await write(bytes);
  await assert.rejects(openGguf(path), (e: unknown) => {
    assert.ok(e instanceof GgufError, `expected a GgufError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `message should name the file: ${e.message}`);
    return true;
  });
}

Deno.test("stories260K parses with its shapes, metadata and tensor data", async () => {
  const f = await openGguf(STORIES);
  assert.equal(f.version, 3);
  assert.equal(f.alignment, 32);
  assert.equal(f.metadata["general.architecture"], "llama");
  assert.equal(f.metadata["llama.embedding_length"], 64);
  assert.equal(f.metadata["llama.attention.head_count_kv"], 4);
  assert.equal((f.metadata["tokenizer.ggml.tokens"] as string[]).length, 512);
  assert.equal((f.metadata["tokenizer.ggml.tokens"] as string[])[1], "<s>");
  assert.deepEqual(f.metadataKinds["tokenizer.ggml.scores"], {
    type: V.ARRAY,
    item: { type: V.F32 },
  });
  assert.equal(f.tensors.length, 3 + 5 * 9);
  assert.deepEqual(f.tensor("blk.0.ffn_down.weight")?.dims, [172, 64]);
  assert.deepEqual(f.tensor("blk.4.attn_k.weight")?.dims, [64, 32]);
  const last = f.tensors[f.tensors.length - 1];
  assert.equal(last.offset + last.byteLength, f.fileSize);
  const norm = f.tensor("output_norm.weight")!;
  const data = await readTensorData(f, norm);
  assert.equal(data.length, 64 * 4);
  const values = new Float32Array(data.buffer);
  assert.ok(values.every((x) => Number.isFinite(x) && x !== 0), "norm weights are real numbers");
});

Deno.test("bytesRead counts the header's reads, then each tensor's, not the whole file", async () => {
  const f = await openGguf(STORIES);
  // The header of stories260K (512 tokens) is ~10 KiB; the file ~1.2 MB.
  assert.ok(f.bytesRead >= f.dataOffset, `${f.bytesRead} bytes cover the header`);
  assert.ok(f.bytesRead <= 64 << 10, `the header read ${f.bytesRead} of ${f.fileSize} bytes`);
  const header = f.bytesRead;
  const layer = f.tensors.filter((t) => t.name.startsWith("blk.1."));
  for (const t of layer) await readTensorData(f, t);
  const sum = layer.reduce((s, t) => s + t.byteLength, 0);
  assert.equal(f.bytesRead, header + sum);
  for (const t of f.tensors) await readTensorData(f, t);
  const all = f.tensors.reduce((s, t) => s + t.byteLength, 0);
  assert.equal(f.bytesRead, header + sum + all);
});

Deno.test("every vocab fixture parses with its token list", async () => {
  let seen = 0;
  for await (const entry of Deno.readDir(fixturePath("vocab"))) {
    if (!entry.name.endsWith(".gguf")) continue;
    const f = await openGguf(fixturePath(`vocab/${entry.name}`));
    const tokens = f.metadata["tokenizer.ggml.tokens"] as string[];
    assert.ok(tokens.length > 1000, `${entry.name} has a vocabulary`);
    assert.equal(f.tensors.length, 0);
    seen++;
  }
  assert.equal(seen, 5);
});

Deno.test("a hand-built file reads back values of every type", async () => {
  const b = new Bytes().header(2, 1, 12);
  b.str("u8").u32(V.U8).u8(200);
  b.str("i8").u32(V.I8).u8(0xff);
  b.str("u16").u32(V.U16).raw([0x34, 0x12]);
  b.str("i16").u32(V.I16).raw([0xfe, 0xff]);
  b.str("i32").u32(V.I32).i32(-7);
  b.str("f32").u32(V.F32).f32(0.5);
  b.str("bool").u32(V.BOOL).u8(1);
  b.str("u64").u32(V.U64).u64(1n << 60n);
  b.str("i64").u32(V.I64).i64(-5n);
  b.str("f64").u32(V.F64).raw([...new Uint8Array(new Float64Array([1e300]).buffer)]);
  b.str("nested").u32(V.ARRAY).u32(V.ARRAY).u64(2);
  b.u32(V.U8).u64(2).u8(1).u8(2).u32(V.STRING).u64(1).str("é");
  b.str("general.alignment").u32(V.U32).u32(16);
  b.tensor("t", [3], GgmlType.I8, 0).padTo(16).raw([1, 2, 3]);
  const f = await openGguf(await write(b));
  assert.equal(f.version, 2);
  assert.deepEqual(
    [f.metadata.u8, f.metadata.i8, f.metadata.u16, f.metadata.i16, f.metadata.i32],
    [200, -1, 0x1234, -2, -7],
  );
  assert.equal(f.metadata.f32, 0.5);
  assert.equal(f.metadata.bool, true);
  assert.equal(f.metadata.u64, 1n << 60n, "a u64 past 2^53 stays exact as a bigint");
  assert.equal(f.metadata.i64, -5);
  assert.equal(f.metadata.f64, 1e300);
  assert.deepEqual(f.metadata.nested, [[1, 2], ["é"]]);
  assert.equal(f.alignment, 16);
  assert.equal(f.dataOffset % 16, 0);
  assert.deepEqual([...await readTensorData(f, f.tensors[0])], [1, 2, 3]);
});

Deno.test("general.alignment places the data section", async () => {
  const f = await openGguf(await write(validFile(64)));
  assert.equal(f.alignment, 64);
  assert.equal(f.dataOffset, 192); // a 143-byte header and directory, padded to 64
  const values = new Float32Array((await readTensorData(f, f.tensor("w")!)).buffer);
  assert.deepEqual([...values], [0, 1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("rejects files that are not GGUF, or not a version it reads", async () => {
  await rejects(new Uint8Array([1, 2, 3]), /not a GGUF file: only 3 bytes/);
  const ggml = new Bytes().raw([0x67, 0x67, 0x6d, 0x6c]).u32(1).u64(0).u64(0);
  await rejects(ggml, /not a GGUF file: magic is "ggml"/);
  const bigEndian = new Bytes().raw([0x47, 0x47, 0x55, 0x46, 0, 0, 0, 3]).u64(0).u64(0);
  await rejects(bigEndian, /big-endian GGUF \(version 3\) is not supported/);
  await rejects(new Bytes().header(1, 0, 0), /unsupported GGUF version 1/);
  await rejects(new Bytes().header(4, 0, 0), /unsupported GGUF version 4/);
});

Deno.test("rejects truncated headers, directories and tensor data", async () => {
  const whole = validFile().bytes();
  await rejects(whole.subarray(0, 60), /truncated file: metadata "general.architecture" needs 8/);
  await rejects(whole.subarray(0, 12), /truncated file: header counts/);
  const dirEnd = 24 + (28 + 4 + 13) + (9 + 4 + 16 + 4 + 8); // header, one entry, one tensor
  await rejects(whole.subarray(0, dirEnd - 3), /truncated file: tensor "w" needs 8 bytes/);
  await rejects(whole.subarray(0, whole.length - 1), /data of tensor "w" .* runs past the end/);
});

Deno.test("rejects absurd counts and lengths", async () => {
  await rejects(
    new Bytes().header(3, 0, 1_000_000),
    /corrupt header: 0 tensors and 1000000 metadata/,
  );
  const pad = new Array(16).fill(0);
  await rejects(new Bytes().header(3, 0, 1).u64(2n ** 60n).raw(pad), /absurd length of key/);
  await rejects(
    new Bytes().header(3, 0, 1).u64(2n ** 63n).raw(pad),
    /absurd length of key.*9223372036854775808/,
  );
  const longString = new Bytes().header(3, 0, 1).str("k").u32(V.STRING).u64(50);
  await rejects(longString, /absurd length of metadata "k": 50 bytes, but only 0 remain/);
  const longArray = new Bytes().header(3, 0, 1).str("k").u32(V.ARRAY).u32(V.U32).u64(1e9);
  await rejects(longArray, /absurd array length of metadata "k": 1000000000 items/);
  const hugeDims = new Bytes().header(3, 1, 0).tensor("w", [2 ** 40, 2 ** 40], 0, 0);
  await rejects(hugeDims, /absurd dimensions of tensor "w"/);
  const manyDims = new Bytes().header(3, 1, 0).tensor("w", [1, 1, 1, 1, 1], 0, 0);
  await rejects(manyDims, /tensor "w" has 5 dimensions/);
});

Deno.test("rejects unknown value types, tensor types and duplicates", async () => {
  await rejects(
    new Bytes().header(3, 0, 1).str("k").u32(13).u32(0),
    /unknown metadata value type 13 in metadata "k"/,
  );
  await rejects(
    new Bytes().header(3, 0, 1).str("k").u32(V.ARRAY).u32(42).u64(0),
    /unknown metadata value type 42 in metadata "k"/,
  );
  const unknownType = new Bytes().header(3, 1, 0).tensor("blk.0.x", [32], 99, 0).padTo(32);
  await rejects(
    unknownType.raw(new Array(128).fill(0)),
    /tensor "blk.0.x" has unknown type code 99/,
  );
  const dupKey = new Bytes().header(3, 0, 2).str("k").u32(V.U8).u8(1).str("k").u32(V.U8).u8(2);
  await rejects(dupKey, /duplicate metadata key "k"/);
  const dupTensor = new Bytes().header(3, 2, 0).tensor("w", [1], 0, 0).tensor("w", [1], 0, 32);
  await rejects(dupTensor.padTo(32).raw(new Array(64).fill(0)), /duplicate tensor name "w"/);
});

Deno.test("rejects partial blocks, misaligned offsets and bad alignment", async () => {
  const partial = new Bytes().header(3, 1, 0).tensor("q", [33, 2], GgmlType.Q4_0, 0).padTo(32);
  await rejects(
    partial.raw(new Array(64).fill(0)),
    /tensor "q" \(Q4_0, dims \[33, 2\]\): row length 33 does not fill whole blocks of 32/,
  );
  const misaligned = new Bytes().header(3, 1, 0).tensor("w", [1], GgmlType.F32, 4).padTo(32);
  await rejects(
    misaligned.raw(new Array(64).fill(0)),
    /tensor "w" has offset 4, not a multiple of the alignment 32/,
  );
  const bytes = validFile(48);
  await rejects(bytes, /general.alignment must be a power of two, got 48/);
});

Deno.test("readTensorData reports a file cut short after it was opened", async () => {
  const path = await write(validFile());
  const f = await openGguf(path);
  const whole = await Deno.readFile(path);
  await Deno.writeFile(path, whole.subarray(0, whole.length - 4));
  await assert.rejects(readTensorData(f, f.tensor("w")!), /truncated file: data of tensor "w"/);
});
