/**
 * Behaviour beyond the conformance pairs: special tokens, BOS/EOS, decoding, streaming and
 * end-of-generation. Expected values were produced by llama.cpp itself (node-llama-cpp 3.21.1,
 * `tokenize` / `detokenize` on the same vocab files).
 */
import assert from "node:assert/strict";
import { openGguf } from "../gguf.ts";
import { type Tokenizer, tokenizerFromMetadata } from "./mod.ts";
import { fixturePath, STORIES } from "../../tests/support/fixtures.ts";

const cache = new Map<string, Tokenizer>();
async function vocab(name: string): Promise<Tokenizer> {
  const path = name === "stories260K" ? STORIES : fixturePath(`vocab/ggml-vocab-${name}.gguf`);
  if (!cache.has(name)) cache.set(name, tokenizerFromMetadata((await openGguf(path)).metadata));
  return cache.get(name)!;
}

const plain = { addSpecial: false, parseSpecial: false };
const special = { addSpecial: false, parseSpecial: true };

Deno.test("stories260K: 'Once upon a time' encodes with BOS and decodes back", async () => {
  const t = await vocab("stories260K");
  const ids = t.encode("Once upon a time");
  assert.deepEqual(ids, [1, 403, 407, 261, 378]);
  assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < t.vocabSize));
  assert.equal(t.vocabSize, 512);
  assert.equal(t.decode(ids.slice(1)), "Once upon a time");
  // llama.cpp strips the prefix space only when the first token is not BOS.
  assert.equal(t.decode(ids), " Once upon a time");
  assert.equal(t.decode(ids, { special: true }), "<s> Once upon a time");
  assert.equal(t.tokenText(403), "▁Once");
});

Deno.test("SPM: special tokens are parsed only with parseSpecial, and get a space after", async () => {
  const t = await vocab("llama-spm");
  assert.deepEqual(t.encode("<s>Hello</s> world", special), [1, 15043, 2, 29871, 3186]);
  assert.deepEqual(t.encode("<s>Hello</s> world", plain), [
    529,
    29879,
    29958,
    10994,
    829,
    29879,
    29958,
    3186,
  ]);
  assert.equal(t.decode([1, 15043, 2, 29871, 3186], { special: true }), "<s> Hello</s>  world");
  assert.equal(t.decode([1, 15043, 2, 29871, 3186]), " Hello  world");
});

Deno.test("phi-3: chat tokens are parsed and strip the whitespace after them", async () => {
  const t = await vocab("phi-3");
  const ids = t.encode("<|user|>\nhi<|end|>\n<|assistant|>", special);
  assert.deepEqual(ids, [32010, 7251, 32007, 32001]);
  assert.equal(t.decode(ids, { special: true }), "<|user|> hi<|end|><|assistant|>");
  assert.ok(t.isEndOfGeneration(32007), "<|end|> ends generation");
  assert.ok(t.isEndOfGeneration(32000), "<|endoftext|> ends generation");
  assert.ok(!t.isEndOfGeneration(32001));
  assert.equal(t.eos, 32000);
});

Deno.test("deepseek-coder: control tokens need parseSpecial, user-defined ones never do", async () => {
  const t = await vocab("deepseek-coder");
  const text = "<｜begin▁of▁sentence｜>x <|EOT|> y";
  assert.deepEqual(t.encode(text, special), [32013, 87, 207, 32021, 320]);
  assert.equal(t.encode(text, plain)[0], 27); // "<" as plain text
  assert.ok(t.encode(text, plain).includes(32021), "<|EOT|> is user-defined: always split out");
  // add_bos_token = true in this vocab
  assert.equal(t.encode("x")[0], 32013);
  assert.equal(t.addBos, true);
});

Deno.test("gpt-2: byte-level decoding with llama.cpp's space clean-up", async () => {
  const t = await vocab("gpt-2");
  const text = "Hello , world ! It 's a ' test ' isn 't";
  const ids = t.encode(text, plain);
  assert.deepEqual(ids, [15496, 837, 995, 5145, 632, 705, 82, 257, 705, 1332, 705, 2125, 705, 83]);
  assert.equal(t.decode(ids), "Hello, world! It's a'test'isn 't");
  assert.equal(t.tokenText(15496), "Hello");
  assert.equal(t.tokenText(18435), "ĠHello");
  assert.equal(t.decode([18435]), " Hello");
  assert.deepEqual(t.encode("hi"), [5303], "gpt-2 adds no BOS by default");
  assert.ok(t.isEndOfGeneration(50256));
  assert.deepEqual(t.encode("<|endoftext|>", special), [50256]);
});

Deno.test("bert-bge: [CLS]/[SEP] added, lowercased WordPiece, decoded with ▁ as space", async () => {
  const t = await vocab("bert-bge");
  assert.deepEqual(t.encode("Hello World"), [101, 7592, 2088, 102]);
  assert.deepEqual(t.encode("[CLS] hello [SEP] x", special), [101, 7592, 102, 1060]);
  assert.equal(t.decode([7592, 1010, 2088, 999]), " hello, world!");
  assert.equal(t.decode([101, 7592, 102, 1060], { special: true }), "[CLS] hello[SEP] x");
});

Deno.test("decode(encode(x)) == x where llama.cpp round-trips", async () => {
  const texts = [
    "Hello world",
    " this is 🦙.cpp",
    "нещо на Български",
    "  leading and trailing  ",
    "tabs\tand\nnewlines\n\n",
    "日本語のテキスト 1314151天～",
    "emoji 👨‍👩‍👧 done",
  ];
  for (const name of ["llama-spm", "phi-3", "gpt-2", "deepseek-coder"]) {
    const t = await vocab(name);
    for (const text of texts) {
      assert.equal(t.decode(t.encode(text, plain)), text, `${name}: ${JSON.stringify(text)}`);
    }
  }
});

Deno.test("streaming decoder holds bytes until a character is complete", async () => {
  const t = await vocab("llama-spm");
  // " this is 🦙.cpp": the llama is four <0xXX> byte tokens (243 162 169 156)
  const ids = t.encode(" this is 🦙.cpp", plain);
  assert.deepEqual(ids.slice(4, 8), [243, 162, 169, 156]);
  const d = t.createDecoder();
  const parts = ids.map((id) => d.push(id));
  assert.deepEqual(parts.slice(4, 8), ["", "", "", "🦙"]);
  assert.ok(parts.every((p) => !p.includes("\ufffd")));
  assert.equal(parts.join("") + d.flush(), "  this is 🦙.cpp");

  // CJK split across byte-level BPE tokens in gpt-2
  const g = await vocab("gpt-2");
  const cjk = g.encode("我想在apple工作", plain);
  const gd = g.createDecoder();
  const out = cjk.map((id) => gd.push(id));
  assert.ok(out.some((p) => p === ""), "some token ends mid-character");
  assert.ok(out.every((p) => !p.includes("\ufffd")));
  assert.equal(out.join("") + gd.flush(), "我想在apple工作");

  // an unfinished sequence comes out as U+FFFD only at flush
  const d2 = t.createDecoder();
  assert.equal(d2.push(243) + d2.push(162), "");
  assert.equal(d2.flush(), "\ufffd");
});

Deno.test("clear errors for bad metadata and ids", async () => {
  assert.throws(() => tokenizerFromMetadata({ "tokenizer.ggml.model": "rwkv" }), /rwkv/);
  assert.throws(
    () => tokenizerFromMetadata({ "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": ["a"] }),
    /merges/,
  );
  assert.throws(
    () =>
      tokenizerFromMetadata({
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "no-such-pre",
        "tokenizer.ggml.tokens": ["a"],
        "tokenizer.ggml.merges": [],
      }),
    /no-such-pre/,
  );
  const t = await vocab("stories260K");
  assert.throws(() => t.tokenText(512), RangeError);
  assert.throws(() => t.decode([9999]), RangeError);
});
