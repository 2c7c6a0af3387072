import assert from "node:assert/strict";
import { createStopMatcher } from "./stop-strings.ts";

/** Pushes pieces one by one; returns everything emitted and where it stopped. */
function run(stops: string[], pieces: string[]) {
  const m = createStopMatcher(stops);
  let out = "";
  const emits: string[] = [];
  let stoppedAt = -1;
  let stop: string | undefined;
  pieces.forEach((piece, i) => {
    const r = m.push(piece);
    out += r.emit;
    emits.push(r.emit);
    if (r.stopped && stoppedAt < 0) {
      stoppedAt = i;
      stop = r.stop;
    }
  });
  out += m.flush();
  return { out, emits, stoppedAt, stop };
}

Deno.test("text without stop strings passes through promptly", () => {
  const r = run(["</s>"], ["Hello", " world", "!"]);
  assert.deepEqual(r.emits, ["Hello", " world", "!"]);
  assert.equal(r.out, "Hello world!");
  assert.equal(r.stoppedAt, -1);
});

Deno.test("a stop string split across many tokens never leaks", () => {
  const r = run(["<|im_end|>"], ["Sure", ".", "<", "|", "im", "_", "end", "|", ">", "after"]);
  assert.equal(r.out, "Sure.");
  assert.equal(r.stoppedAt, 8);
  assert.equal(r.stop, "<|im_end|>");
  for (const e of r.emits) assert.ok(!e.includes("<"), `leaked ${JSON.stringify(e)}`);
});

Deno.test("a false start is released as soon as it cannot match", () => {
  const r = run(["<|im_end|>"], ["a <", "|im", " nope"]);
  assert.deepEqual(r.emits, ["a ", "", "<|im nope"]);
  assert.equal(r.out, "a <|im nope");
});

Deno.test("text after the stop in the same piece is dropped, and later pushes emit nothing", () => {
  const m = createStopMatcher(["END"]);
  assert.deepEqual(m.push("abcENDxyz"), { emit: "abc", stopped: true, stop: "END" });
  assert.deepEqual(m.push("more"), { emit: "", stopped: true, stop: "END" });
  assert.equal(m.flush(), "");
});

Deno.test("overlapping prefixes: the earliest complete stop wins", () => {
  // "abd" must not be missed because "abc" was a partial match at the same place.
  assert.equal(run(["abc", "abd"], ["xa", "b", "d", "tail"]).out, "x");
  // Self-overlapping stop: "aab" inside "aaab".
  assert.equal(run(["aab"], ["a", "a", "a", "b"]).out, "a");
  // Of two stops the earlier one in the text wins, whatever their order in the list.
  const r = run(["world", "lo w"], ["hello world"]);
  assert.equal(r.out, "hel");
  assert.equal(r.stop, "lo w");
});

Deno.test("held-back text is flushed when generation ends without a stop", () => {
  const m = createStopMatcher(["</answer>"]);
  assert.deepEqual(m.push("42</ans"), { emit: "42", stopped: false });
  assert.equal(m.flush(), "</ans");
});

Deno.test("unicode stop strings and text", () => {
  const r = run(["。\n", "🛑"], ["日本", "語", "です", "。", "\n続き"]);
  assert.equal(r.out, "日本語です");
  const emoji = run(["🛑"], ["ok ", "🛑", " no"]);
  assert.equal(emoji.out, "ok ");
  // A held-back astral prefix is released whole, never half a surrogate pair.
  const partial = createStopMatcher(["🙂🛑"]);
  assert.deepEqual(partial.push("hi 🙂"), { emit: "hi ", stopped: false });
  assert.deepEqual(partial.push("!"), { emit: "🙂!", stopped: false });
});

Deno.test("no stop strings, or only empty ones, emit everything at once", () => {
  assert.deepEqual(run([], ["a", "b"]).emits, ["a", "b"]);
  assert.deepEqual(run([""], ["a", "b"]).emits, ["a", "b"]);
});
