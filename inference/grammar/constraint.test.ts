// The token-level matcher on real vocabularies: stories260K's SentencePiece (byte fallback),
// llama's 32k SentencePiece, and the byte-level BPE of GPT-2 and deepseek-coder (llama3-style).
import assert from "node:assert/strict";
import { openGguf } from "../gguf.ts";
import { createRng } from "../rng.ts";
import { createSampler } from "../sampler.ts";
import { type Tokenizer, tokenizerFromMetadata } from "../tokenizer/mod.ts";
import { fixturePath } from "../../tests/support/fixtures.ts";
import { createConstraint } from "./constraint.ts";
import { parseGbnf } from "./gbnf.ts";
import { type Grammar, GrammarError } from "./grammar.ts";
import { jsonObjectGrammar } from "./json-primitives.ts";
import { jsonSchemaGrammar } from "./json-schema.ts";
import { acceptsText, matcherOf } from "./matcher.ts";
import { tokenTrieOf } from "./token-trie.ts";

const VOCABS = {
  stories260K: "stories260K.gguf",
  "llama-spm": "vocab/ggml-vocab-llama-spm.gguf",
  "gpt-2": "vocab/ggml-vocab-gpt-2.gguf",
  "deepseek-coder": "vocab/ggml-vocab-deepseek-coder.gguf",
};
const tokenizers = new Map<string, Tokenizer>();
async function tokenizer(name: keyof typeof VOCABS): Promise<Tokenizer> {
  let t = tokenizers.get(name);
  if (!t) {
    t = tokenizerFromMetadata((await openGguf(fixturePath(VOCABS[name]))).metadata);
    tokenizers.set(name, t);
  }
  return t;
}

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 3, maxLength: 12 },
    age: { type: "integer", minimum: 0, maximum: 130 },
    tags: { type: "array", items: { enum: ["a", "b", "ü"] }, minItems: 1, maxItems: 3 },
    when: { type: "string", format: "date" },
    note: { anyOf: [{ type: "null" }, { type: "string", pattern: "^[A-Z][a-z]+$" }] },
  },
  required: ["name", "age", "tags"],
};

/**
 * Samples up to `budget` tokens from random logits through the mask (temperature 1, no
 * truncation), as the scheduler does; returns the text and how it ended.
 */
function sample(grammar: Grammar, tok: Tokenizer, budget: number, seed: number) {
  const c = createConstraint(grammar, tok);
  const rng = createRng(seed);
  const sampler = createSampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed });
  const bytes: number[] = [];
  let ended = "length", tokens = 0;
  for (let left = budget; left > 0; left--) {
    const logits = new Float32Array(tok.vocabSize);
    for (let i = 0; i < logits.length; i++) logits[i] = rng.nextFloat() * 8;
    c.mask(logits, left);
    const id = sampler.sample(logits, []).id;
    tokens++;
    if (tok.isEndOfGeneration(id)) {
      assert.ok(c.canEnd(), "end of generation is allowed only when the answer is complete");
      ended = "eog";
      break;
    }
    c.accept(id);
    bytes.push(...tok.tokenBytes(id));
    if (c.mustEnd()) {
      ended = "final";
      break;
    }
  }
  return { text: new TextDecoder().decode(Uint8Array.from(bytes)), ended, tokens, c };
}

Deno.test("constraint: every vocabulary here spells every byte with a token of its own", async () => {
  for (const name of Object.keys(VOCABS) as (keyof typeof VOCABS)[]) {
    const tok = await tokenizer(name);
    const trie = tokenTrieOf(tok);
    assert.equal(tokenTrieOf(tok), trie, "one trie per tokenizer");
    const missing = [...Array(256).keys()].filter((b) =>
      !trie.singleByte[b] && b !== 0xc0 && b !== 0xc1 && b < 0xf5
    );
    assert.deepEqual(missing, [], `${name}: bytes without a token`);
    assert.ok(trie.endOfGeneration.length > 0, `${name} has an end-of-generation token`);
  }
});

Deno.test("constraint: masked sampling from random logits always gives a valid answer", async () => {
  const grammars = [
    jsonSchemaGrammar(SCHEMA),
    jsonObjectGrammar(),
    parseGbnf(`root ::= "<" [a-zé€]{2,5} ">" ("," [0-9]+)*`),
  ];
  for (const name of Object.keys(VOCABS) as (keyof typeof VOCABS)[]) {
    const tok = await tokenizer(name);
    for (const [gi, g] of grammars.entries()) {
      // From the fewest tokens that surely close (one byte each) to a roomy budget.
      const least = matcherOf(g).minBytes(matcherOf(g).start);
      for (const [seed, budget] of [[1, least], [2, least + 8], [3, 90]]) {
        const { text, c } = sample(g, tok, budget, seed * 7 + gi);
        assert.ok(acceptsText(g, text), `${name}, grammar ${gi}, ${budget} tokens: ${text}`);
        assert.ok(c.canEnd());
        if (gi < 2) JSON.parse(text);
      }
    }
  }
});

Deno.test("constraint: a budget of the shortest answer's bytes always closes, minimums kept", async () => {
  const tok = await tokenizer("stories260K");
  const g = jsonSchemaGrammar(SCHEMA);
  const shortest = '{"name":"xxx","age":0,"tags":["a"]}'.length; // bytes of a shortest answer
  assert.equal(matcherOf(g).minBytes(matcherOf(g).start), shortest);
  for (let seed = 0; seed < 5; seed++) {
    const { text, c } = sample(g, tok, shortest, seed);
    const v = JSON.parse(text);
    assert.ok(v.name.length >= 3, `minLength kept: ${text}`);
    assert.ok(v.tags.length >= 1, `minItems kept: ${text}`);
    assert.ok(c.closedEarly(), "the budget forced the close");
  }
  // A roomy budget never needs it.
  const roomy = createConstraint(parseGbnf(`root ::= "ab"`), tok);
  const logits = new Float32Array(tok.vocabSize);
  roomy.mask(logits, 100);
  assert.equal(roomy.closedEarly(), false);
});

Deno.test("constraint: a budget below the minimum keeps the shortest continuations", async () => {
  const tok = await tokenizer("gpt-2");
  const g = parseGbnf(`root ::= "abc" [x-z]{10}`);
  const { text } = sample(g, tok, 3, 1);
  assert.ok(text.startsWith("abc") || "abc".startsWith(text), text); // cut short, but on the path
});

Deno.test("constraint: end only where the answer is complete; stop where nothing may follow", async () => {
  const tok = await tokenizer("stories260K");
  const eos = tok.eos!;
  const c = createConstraint(parseGbnf(`root ::= "a" "b"?`), tok);
  const mask = () => {
    const logits = new Float32Array(tok.vocabSize).fill(1);
    c.mask(logits, 10);
    return [...logits.keys()].filter((i) => logits[i] > -Infinity);
  };
  assert.ok(!mask().includes(eos), "no end before the answer");
  assert.throws(() => c.accept(eos), GrammarError);
  const a = [...Array(tok.vocabSize).keys()].find((id) =>
    new TextDecoder().decode(tok.tokenBytes(id)) === "a"
  )!;
  c.accept(a);
  assert.ok(c.canEnd() && !c.mustEnd());
  const allowed = mask();
  assert.ok(allowed.includes(eos));
  assert.ok(
    allowed.every((id) => id === eos || new TextDecoder().decode(tok.tokenBytes(id)) === "b"),
  );
  assert.throws(() => c.accept(a), /breaks the grammar/);
  c.accept(allowed.find((id) => id !== eos)!);
  assert.ok(c.mustEnd());
});

Deno.test("constraint: a vocabulary without single-byte tokens closes along tokens it has", () => {
  // Tokens for whole pieces only: no single '"' or '}' token, say.
  const pieces = ['{"k":"', "x", "xx", '"}', '","', "\u0000EOS"];
  const tok = {
    vocabSize: pieces.length,
    tokenBytes: (id: number) => new TextEncoder().encode(id === 5 ? "" : pieces[id]),
    isEndOfGeneration: (id: number) => id === 5,
  };
  const g = jsonSchemaGrammar({
    type: "object",
    properties: { k: { type: "string", minLength: 3 } },
    required: ["k"],
    additionalProperties: false,
  });
  for (let seed = 0; seed < 20; seed++) {
    const rng = createRng(seed);
    const c = createConstraint(g, tok);
    let text = "";
    for (let left = 4; left > 0 && !c.mustEnd(); left--) {
      const logits = Float32Array.from(pieces, () => rng.nextFloat());
      c.mask(logits, left);
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      if (best === 5) break;
      c.accept(best);
      text += pieces[best];
    }
    assert.ok(acceptsText(g, text), `seed ${seed}: ${text}`);
  }
});

Deno.test("constraint: no token can continue: a GrammarError, not a silent pick", () => {
  const tok = {
    vocabSize: 2,
    tokenBytes: (id: number) => new TextEncoder().encode(["a", ""][id]),
    isEndOfGeneration: (id: number) => id === 1,
  };
  const c = createConstraint(parseGbnf(`root ::= "b"`), tok);
  assert.throws(() => c.mask(new Float32Array(2), 5), /no token of the vocabulary/);
});
