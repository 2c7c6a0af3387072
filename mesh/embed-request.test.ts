import assert from "node:assert/strict";
import {
  decodeVector,
  EMBED_LIMITS,
  encodeVector,
  isEmbedFrame,
  parseEmbedRequest,
} from "./embed-request.ts";
import { ServiceError } from "./service.ts";

const refused = (frame: unknown, re: RegExp) =>
  assert.throws(
    () => parseEmbedRequest(frame),
    (e) => e instanceof ServiceError && e.code === "invalid_request" && re.test(e.message),
  );

Deno.test("an embeddings request: texts and token ids, pooling and truncate, nothing else", () => {
  const ok = { model: "m", embed: { input: ["a", [1, 2]], pooling: "mean", truncate: true } };
  assert.equal(parseEmbedRequest(ok), ok);
  assert.ok(isEmbedFrame(ok));
  assert.ok(!isEmbedFrame({ model: "m", prompt: "a", params: {} }));
  refused({ model: "", embed: { input: ["a"] } }, /request\.model/);
  refused({ model: "m", embed: { input: [] } }, /embed\.input must be an array of 1 to 256/);
  const many = Array.from({ length: EMBED_LIMITS.maxInputs + 1 }, () => "x");
  refused({ model: "m", embed: { input: many } }, /1 to 256 inputs/);
  refused({ model: "m", embed: { input: [[]] } }, /embed\.input\[0\]/);
  refused({ model: "m", embed: { input: ["a", [1, -2]] } }, /embed\.input\[1\]/);
  refused({ model: "m", embed: { input: [[1.5]] } }, /token ids/);
  refused({ model: "m", embed: { input: [7] } }, /embed\.input\[0\]/);
  refused({ model: "m", embed: { input: ["a"], pooling: "cls" } }, /embed\.pooling/);
  refused({ model: "m", embed: { input: ["a"], truncate: "yes" } }, /embed\.truncate/);
  refused({ model: "m", embed: { input: ["a"], dimensions: 8 } }, /embed\.dimensions is not/);
  refused({ model: "m", embed: { input: ["a"] }, params: {} }, /request\.params is not part/);
  refused({ model: "m", embed: "a" }, /request\.embed is not an object/);
});

Deno.test("a vector travels as base64 of little-endian f32: exact, 4 bytes a dimension", () => {
  const v = Float32Array.from([1, -0.5, 1e-30, 3.4e38, Math.PI, 0, -0]);
  const text = encodeVector(v);
  assert.equal(text.length, Math.ceil((v.length * 4) / 3) * 4);
  assert.deepEqual(decodeVector(text), v);
  // What OpenAI's encoding_format base64 means: the bytes of a Float32Array on x86 and ARM.
  assert.equal(text, btoa(String.fromCharCode(...new Uint8Array(v.buffer))));
  assert.equal(decodeVector(""), undefined);
  assert.equal(decodeVector("AAAA"), undefined); // 3 bytes: no whole f32
  assert.equal(decodeVector("AAA*AAAA"), undefined);
  assert.equal(decodeVector("AAAAA==="), undefined);
  assert.deepEqual(decodeVector("AAAAAA=="), new Float32Array(1));
});
