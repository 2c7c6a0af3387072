// A sequence's token handling with a letter tokenizer (id 1 = "a", 2 = "b", ...; 0 ends the
// generation) and greedy sampling, so each step's logits name the token.
import assert from "node:assert/strict";
import { acceptToken, createSequence, resultOf } from "./scheduler-sequence.ts";

const VOCAB = 8;
const tokenizer = {
  createDecoder: () => ({ push: (id: number) => String.fromCharCode(96 + id), flush: () => "" }),
  isEndOfGeneration: (id: number) => id === 0,
};

/** Logits whose argmax is `id`. */
function pick(id: number): Float32Array {
  const logits = new Float32Array(VOCAB);
  logits[id] = 10;
  return logits;
}

const greedy = (over = {}) => ({ temperature: 0, ...over });

Deno.test("sequence: a token is emitted and fed next; the reader is woken", () => {
  const seq = createSequence([5, 6], greedy(), 8, tokenizer);
  let woken = 0;
  seq.wake = () => woken++;
  assert.equal(acceptToken(seq, pick(1), tokenizer), undefined);
  assert.deepEqual(seq.events.map((e) => [e.id, e.text]), [[1, "a"]]);
  assert.equal(seq.next, 1);
  assert.deepEqual(seq.history, [5, 6, 1]);
  assert.equal(woken, 1);
  assert.equal(seq.wake, undefined, "a reader is woken once per wait");
});

Deno.test("sequence: it ends at the end token, a stop string or its token limit", () => {
  const eog = createSequence([5], greedy(), 8, tokenizer);
  assert.deepEqual(acceptToken(eog, pick(0), tokenizer), { reason: "stop" });
  assert.deepEqual(eog.events, [], "the end token is not emitted");

  const stopped = createSequence([5], greedy({ stop: ["bc"] }), 8, tokenizer);
  assert.equal(acceptToken(stopped, pick(1), tokenizer), undefined);
  assert.equal(acceptToken(stopped, pick(2), tokenizer), undefined); // "b" is held back
  assert.deepEqual(acceptToken(stopped, pick(3), tokenizer), {
    reason: "stop",
    stoppedByString: true,
  });
  assert.equal(stopped.events.map((e) => e.text).join(""), "a");

  const limited = createSequence([5], greedy(), 2, tokenizer);
  assert.equal(acceptToken(limited, pick(1), tokenizer), undefined);
  assert.deepEqual(acceptToken(limited, pick(2), tokenizer), { reason: "length" });
  assert.equal(limited.events.length, 2, "the last token is still emitted");
});

Deno.test("sequence: the result says whether it held a slot, and flushes held-back text", () => {
  // Whole milliseconds, so the differences are exact.
  const queued = Object.assign(createSequence([5, 6, 7], greedy(), 8, tokenizer), {
    queuedAt: 1000,
  });
  const late = resultOf(queued, { reason: "cancelled" }, 1030);
  assert.equal(late.admitted, false);
  assert.equal(late.queuedMs, 30);
  assert.equal(late.prefillMs + late.decodeMs + late.completionTokens, 0);
  assert.equal(late.promptTokens, 3);

  const ran = createSequence([5], greedy({ stop: ["bc"] }), 8, tokenizer);
  Object.assign(ran, { slot: 0, queuedAt: 1000, admittedAt: 1005, prefilledAt: 1015 });
  acceptToken(ran, pick(1), tokenizer);
  acceptToken(ran, pick(2), tokenizer);
  const done = resultOf(ran, { reason: "length" }, 1035);
  assert.equal(done.admitted, true);
  assert.equal(done.tail, "b", "the held-back start of a stop string");
  assert.deepEqual([done.queuedMs, done.prefillMs, done.decodeMs], [5, 10, 20]);
  assert.equal(done.decodeTokensPerSecond, 1 / 0.02);
});
