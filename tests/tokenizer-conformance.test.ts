/**
 * llama.cpp's tokenizer conformance pairs (models/ggml-vocab-*.gguf.inp/.out): every string
 * must tokenize to exactly llama.cpp's ids. As in llama.cpp's test-tokenizer-0, strings are
 * tokenized with add_special = false and parse_special = false.
 */
import assert from "node:assert/strict";
import { openGguf, tokenizerFromMetadata } from "../inference/mod.ts";
import { createPromptEncoder, encodePrompt } from "../mesh/mod.ts";
import { fixturePath, STORIES } from "./helpers.ts";

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
    const base = fixturePath(`vocab/ggml-vocab-${name}.gguf`);
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
  const file = await openGguf(fixturePath("vocab/ggml-vocab-llama-spm.gguf"));
  const tokenizer = tokenizerFromMetadata(file.metadata);
  assert.equal(tokenizer.tokenText(30143), "\uFEFF");
  assert.deepEqual(tokenizer.encode("\uFEFF", { addSpecial: false }).includes(30143), true);
});

// A serving node refuses a prompt by its length before tokenizing (mesh/prompt.ts): every
// conformance string must have at least ceil(length / maxTokenChars) tokens, with and without
// special-token parsing.
for (const name of [...VOCABS, "stories260K"]) {
  Deno.test(`token count lower bound holds: ${name}`, async () => {
    const { tokenizer, pairs } = await fixture(name);
    const { maxTokenChars } = tokenizer;
    assert.ok(maxTokenChars >= 1);
    const texts = [...pairs.map((p) => p.input), longText(pairs)];
    for (const input of texts) {
      for (const options of [{ addSpecial: false, parseSpecial: false }, {}]) {
        const n = tokenizer.encode(input, options).length;
        const atLeast = Math.ceil(input.length / maxTokenChars);
        assert.ok(n >= atLeast, `${JSON.stringify(input.slice(0, 40))}: ${n} < ${atLeast}`);
      }
    }
  });
}

// Long prompts are tokenized in a worker (mesh/prompt-encoder.ts); its tokens must be exactly
// those of the event loop's tokenizer, for every conformance string and for a long text.
for (const name of [...VOCABS, "stories260K"]) {
  Deno.test(`the prompt worker tokenizes exactly as in process: ${name}`, async () => {
    const { tokenizer, metadata, pairs } = await fixture(name);
    const model = { tokenizer, template: undefined, ctxSize: 1e9 };
    const viaWorker = createPromptEncoder({ model, metadata, inlineWeight: -1 });
    try {
      const texts = [...pairs.map((p) => p.input), longText(pairs)];
      const got = await Promise.all(
        texts.map((prompt) =>
          viaWorker.tokens({ model: name, prompt, params: {} }).then(
            (ids) => ids,
            (err) => `refused: ${err.message}`,
          )
        ),
      );
      for (const [i, prompt] of texts.entries()) {
        let want: number[] | string;
        try {
          want = encodePrompt(model, { model: name, prompt, params: {} });
        } catch (err) {
          want = `refused: ${(err as Error).message}`;
        }
        assert.deepEqual(got[i], want, JSON.stringify(prompt.slice(0, 40)));
      }
    } finally {
      viaWorker.close();
    }
  });
}

async function fixture(name: string) {
  const base = name === "stories260K" ? STORIES : fixturePath(`vocab/ggml-vocab-${name}.gguf`);
  const metadata = (await openGguf(base)).metadata;
  const pairs = name === "stories260K"
    ? readPairs(fixturePath("vocab/ggml-vocab-llama-spm.gguf"))
    : readPairs(base);
  return { tokenizer: tokenizerFromMetadata(metadata), metadata, pairs };
}

/** Every string joined, repeated past 64 Ki characters: a prompt as long ones are. */
function longText(pairs: { input: string }[]): string {
  const all = pairs.map((p) => p.input).join("\n\n");
  return all.repeat(Math.ceil(65_536 / all.length));
}
