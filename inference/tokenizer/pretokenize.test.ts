/**
 * The hand-written GPT-2 / Llama 3 splitters against a plain Unicode regex (they must agree
 * wherever JS and llama.cpp classify characters alike), and llama.cpp's collapsed-category
 * quirks that a JS regex would not have.
 */
import assert from "node:assert/strict";
import { createPreTokenizer, GPT2_REGEX } from "./pretokenize.ts";
import { bpePreset } from "./pre-presets.ts";

const SAMPLES = [
  "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
  "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea?",
  "   Hello\n    Hello\n\n\n \t \t\t x  \n",
  "3 33 333 3333 33333 3.3 3..3 ------======= нещо на Български ''''''```````",
  "trailing spaces   ",
  "ied 4 ½ months Führer",
];

function jsSplit(source: string, text: string): string[] {
  return Array.from(text.matchAll(new RegExp(source, "gu")), (m) => m[0]);
}

Deno.test("GPT-2 splitter equals the GPT-2 regex", () => {
  const pre = createPreTokenizer([GPT2_REGEX], false);
  // the splitter also keeps unmatched text, the regex alone has \s+ for that
  for (const text of SAMPLES) {
    assert.deepEqual(pre.split(text), jsSplit(GPT2_REGEX + String.raw`|\s+`, text));
  }
});

Deno.test("Llama 3 splitter equals the Llama 3 regex", () => {
  const { regexes } = bpePreset("llama-bpe");
  const pre = createPreTokenizer(regexes, false);
  for (const text of SAMPLES) assert.deepEqual(pre.split(text), jsSplit(regexes[0], text), text);
});

Deno.test("regex presets split like llama.cpp, pieces between matches included", () => {
  const coder = createPreTokenizer(bpePreset("deepseek-coder").regexes, false);
  assert.deepEqual(coder.split("Hi 123\nyou"), ["Hi", " ", "1", "2", "3", "\n", "you"]);
  const qwen = createPreTokenizer(bpePreset("qwen2").regexes, false);
  assert.deepEqual(qwen.split("abc 123"), ["abc", " ", "1", "2", "3"]);
  // llama.cpp's collapsed \p{S} lacks ASCII "~", so " ?[\p{P}\p{S}]+" stops before it and
  // "~b" is left to the "[punct][A-Za-z]+" branch; Unicode classes would give "+~", "b".
  const v3 = createPreTokenizer(bpePreset("deepseek-v3").regexes, false);
  assert.deepEqual(v3.split("a+~b"), ["a", "+", "~b"]);
});

Deno.test("byte-level words map every UTF-8 byte to one printable char", () => {
  const pre = createPreTokenizer([GPT2_REGEX], true);
  assert.deepEqual(pre.split(" Hello\n"), ["ĠHello", "Ċ"]);
  assert.deepEqual(pre.split("½"), ["Â½"]);
});
