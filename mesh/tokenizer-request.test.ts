import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/mod.ts";
import { ServiceError, type TokenizerAnswer, type TokenizerRequest } from "./service.ts";
import { MAX_EVENT_FRAME_BYTES } from "./stream-frames.ts";
import {
  isTokenizerFrame,
  parseTokenizerRequest,
  TOKENIZER_LIMITS,
  tokenizerAnswerFrames,
  tokenizerAnswerReader,
} from "./tokenizer-request.ts";

const refused = (re: RegExp) => (e: unknown) =>
  e instanceof ServiceError && e.code === "invalid_request" && re.test(e.message);
const broken = (re: RegExp) => (e: unknown) =>
  e instanceof ServiceError && e.code === "unavailable" && re.test(e.message);

Deno.test("tokenizer requests: the three kinds pass, generations are not tokenizer frames", () => {
  const ok: TokenizerRequest[] = [
    { model: "m", tokenize: { content: "hi", add_special: true, with_pieces: false } },
    { model: "m", detokenize: { tokens: [0, 1, 2 ** 31 - 1] } },
    { model: "m", props: {} },
  ];
  for (const r of ok) {
    assert.ok(isTokenizerFrame(r));
    assert.equal(parseTokenizerRequest(r), r);
  }
  assert.equal(isTokenizerFrame({ model: "m", prompt: "hi", params: {} }), false);
  assert.equal(isTokenizerFrame({ model: "m", embed: { input: ["a"] } }), false);
});

Deno.test("tokenizer requests: each break of the limits is refused naming the field", () => {
  const big = "é".repeat(TOKENIZER_LIMITS.maxContentBytes / 2 + 1); // 2 bytes each
  const cases: [unknown, RegExp][] = [
    [{ tokenize: { content: "a" } }, /request\.model/],
    [{ model: "m", tokenize: { content: "a" }, props: {} }, /exactly one of/],
    [
      { model: "m", tokenize: { content: "a" }, params: {} },
      /request\.params is not part of tokenize/,
    ],
    [{ model: "m", tokenize: "a" }, /request\.tokenize is not an object/],
    [{ model: "m", tokenize: { content: 3 } }, /tokenize\.content must be a string/],
    [{ model: "m", tokenize: { content: big } }, /over 256 KiB/],
    [{ model: "m", tokenize: { content: "a", with_pieces: 1 } }, /with_pieces must be a boolean/],
    [{ model: "m", tokenize: { content: "a", lang: "en" } }, /tokenize\.lang is not supported/],
    [{ model: "m", detokenize: { tokens: [1, -1] } }, /detokenize\.tokens/],
    [{ model: "m", detokenize: { tokens: [1.5] } }, /detokenize\.tokens/],
    [
      { model: "m", detokenize: { tokens: new Array(TOKENIZER_LIMITS.maxTokens + 1).fill(1) } },
      /at most 262144/,
    ],
    [{ model: "m", props: { verbose: true } }, /props\.verbose is not supported/],
  ];
  for (const [frame, re] of cases) {
    assert.throws(
      () => parseTokenizerRequest(frame),
      refused(re),
      JSON.stringify(frame).slice(0, 80),
    );
  }
  // Just under the limit passes: the limit is on UTF-8 bytes, not characters.
  const edge = "é".repeat(TOKENIZER_LIMITS.maxContentBytes / 2);
  assert.doesNotThrow(() => parseTokenizerRequest({ model: "m", tokenize: { content: edge } }));
});

/** The answer as its frames, through the wire's encoding, read back by a client. */
function roundTrip(req: TokenizerRequest, answer: TokenizerAnswer): TokenizerAnswer {
  const reader = tokenizerAnswerReader(req);
  for (const frame of tokenizerAnswerFrames(answer)) {
    assert.ok(encodeFrame(frame).length <= MAX_EVENT_FRAME_BYTES, "each frame fits the limit");
    reader.add(JSON.parse(JSON.stringify(frame)));
  }
  return reader.answer();
}

Deno.test("tokenizer answers: long answers travel in frames within the limit and come back whole", () => {
  // The worst case for size: one token per byte, each piece raw bytes or an escaped character.
  const content = "\u0001".repeat(60_000);
  const req: TokenizerRequest = { model: "m", tokenize: { content, with_pieces: true } };
  const tokens = Array.from({ length: 60_000 }, (_, i) => 2 ** 31 - 1 - i);
  const pieces = tokens.map((_, i) => i % 2 === 0 ? "\u0001\u0002" : [255, 254, 253]);
  const frames = tokenizerAnswerFrames({ kind: "tokenize", tokens, pieces });
  assert.ok(frames.length > 1, `${frames.length} frames`);
  assert.deepEqual(roundTrip(req, { kind: "tokenize", tokens, pieces }), {
    kind: "tokenize",
    tokens,
    pieces,
  });
  // Text in frames never splits a surrogate pair.
  const text = "a😀".repeat(50_000);
  const detok: TokenizerRequest = { model: "m", detokenize: { tokens: [1] } };
  const back = roundTrip(detok, { kind: "detokenize", content: text });
  assert.deepEqual(back, { kind: "detokenize", content: text });
  for (const f of tokenizerAnswerFrames({ kind: "detokenize", content: text })) {
    assert.doesNotMatch(String(f.content), /[\ud800-\udbff]$/);
  }
  // Empty answers still come as one frame.
  assert.deepEqual(
    roundTrip({ model: "m", tokenize: { content: "" } }, { kind: "tokenize", tokens: [] }),
    { kind: "tokenize", tokens: [] },
  );
  const props = {
    n_ctx: 128,
    total_slots: 2,
    chat_template: "{{x}}",
    bos_token: "<s>",
    eos_token: "",
  };
  assert.deepEqual(roundTrip({ model: "m", props: {} }, { kind: "props", props }), {
    kind: "props",
    props,
  });
});

Deno.test("tokenizer answers: a client refuses what the request does not allow", () => {
  const tok: TokenizerRequest = { model: "m", tokenize: { content: "abc" } };
  const cases: [TokenizerRequest, Record<string, unknown>[], RegExp][] = [
    [tok, [{ type: "tokenized", tokens: new Array(11).fill(1) }], /more tokens than the text/],
    [tok, [{ type: "tokenized", tokens: [1, "2"] }], /no token ids/],
    [tok, [{ type: "tokenized", tokens: [1], pieces: ["a"] }], /pieces nobody asked for/],
    [
      { model: "m", tokenize: { content: "abc", with_pieces: true } },
      [{ type: "tokenized", tokens: [1, 2], pieces: ["a"] }],
      /pieces that do not match/,
    ],
    [tok, [{ type: "detokenized", content: "x" }], /a detokenized message/],
    [tok, [{ type: "token", text: "x", id: 1 }], /a token message/],
    [
      { model: "m", detokenize: { tokens: [1] } },
      [{ type: "detokenized", content: 1 }],
      /no string/,
    ],
    [{ model: "m", props: {} }, [{ type: "props", n_ctx: 0, total_slots: 1 }], /context and slots/],
    [
      { model: "m", props: {} },
      [{ type: "props", n_ctx: 8, total_slots: 1, chat_template: "", bos_token: "" }],
      /template and special tokens/,
    ],
  ];
  for (const [req, frames, re] of cases) {
    const reader = tokenizerAnswerReader(req);
    assert.throws(
      () => {
        for (const f of frames) reader.add(f);
      },
      broken(re),
      JSON.stringify(frames).slice(0, 80),
    );
  }
  assert.throws(
    () => tokenizerAnswerReader({ model: "m", props: {} }).answer(),
    broken(/no props/),
  );
});
