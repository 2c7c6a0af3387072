/**
 * llama.cpp's tokenizer conformance pairs (models/ggml-vocab-*.gguf.inp/.out): every string
 * must tokenize to exactly llama.cpp's ids. As in llama.cpp's test-tokenizer-0, strings are
 * tokenized with add_special = false and parse_special = false.
 */
import assert from "node:assert/strict";
import { openGguf, tokenizerFromMetadata } from "../inference/mod.ts";
import { MODELS_DIR } from "./helpers.ts";

const VOCABS = ["llama-spm", "phi-3", "gpt-2", "deepseek-coder", "bert-bge"];

function readPairs(base: string): { input: string; expected: number[] }[] {
  const inputs: string[] = [];
  const raw = Deno.readTextFileSync(`${base}.inp`);
  const sep = "\n__ggml_vocab_test__\n";
  for (let pos = 0; pos < raw.length;) {
    const next = raw.indexOf(sep, pos);
    inputs.push(raw.slice(pos, next < 0 ? raw.length : next));
    if (next < 0) break;
    pos = next + sep.length;
  }
  const outputs = Deno.readTextFileSync(`${base}.out`).split("\n");
  if (outputs.at(-1) === "") outputs.pop();
  assert.equal(inputs.length, outputs.length, `${base}: .inp and .out differ in count`);
  return inputs.map((input, i) => ({
    input,
    expected: outputs[i].trim() === "" ? [] : outputs[i].trim().split(" ").map(Number),
  }));
}

for (const name of VOCABS) {
  Deno.test(`llama.cpp conformance: ggml-vocab-${name}`, async () => {
    const base = `${MODELS_DIR}/vocab/ggml-vocab-${name}.gguf`;
    const tokenizer = tokenizerFromMetadata((await openGguf(base)).metadata);
    const pairs = readPairs(base);
    assert.ok(pairs.length > 40, "expected the full llama.cpp test set");
    const failures: string[] = [];
    for (const { input, expected } of pairs) {
      const got = tokenizer.encode(input, { addSpecial: false, parseSpecial: false });
      if (got.join(" ") !== expected.join(" ")) {
        failures.push(
          `${JSON.stringify(input)}\n    expected ${expected.join(" ")}\n    got      ${
            got.join(" ")
          }`,
        );
      }
    }
    assert.equal(
      failures.length,
      0,
      `${failures.length} strings differ:\n  ${failures.join("\n  ")}`,
    );
  });
}

Deno.test("a vocab token that is exactly U+FEFF survives GGUF reading (llama.cpp keeps it)", async () => {
  const file = await openGguf(`${MODELS_DIR}/vocab/ggml-vocab-llama-spm.gguf`);
  const tokenizer = tokenizerFromMetadata(file.metadata);
  assert.equal(tokenizer.tokenText(30143), "\uFEFF");
  assert.deepEqual(tokenizer.encode("\uFEFF", { addSpecial: false }).includes(30143), true);
});
