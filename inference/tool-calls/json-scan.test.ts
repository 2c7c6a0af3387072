import assert from "node:assert/strict";
import { createJsonScanner, JSON_INVALID, JSON_OPEN } from "./json-scan.ts";

/** The scanner's answer for `text` fed one character at a time, as an index into `text`. */
function scanByChar(text: string): number {
  const s = createJsonScanner();
  for (let i = 0; i < text.length; i++) {
    const r = s.feed(text[i]);
    if (r >= 0) return i + r;
    if (r === JSON_INVALID) return r;
  }
  return JSON_OPEN;
}

Deno.test("json scanner: finds a container's end, whole or fed a character at a time", () => {
  const cases: [string, number][] = [
    ['{"a": 1} tail', 8],
    ['  [1, -2.5e3, true, false, null, "x"]', 37],
    ['{"s": "a \\"}\\" \\u00e9 ]", "n": {"k": [[], {}]}}x', 47],
    ["{}", 2],
    ["[]", 2],
  ];
  for (const [text, end] of cases) {
    assert.equal(createJsonScanner().feed(text), end, text);
    assert.equal(scanByChar(text), end, text);
    assert.deepEqual(JSON.parse(text.slice(0, end)) !== undefined, true);
  }
});

Deno.test("json scanner: open until closed; invalid for good", () => {
  const s = createJsonScanner();
  assert.equal(s.feed('{"name": "f", "arguments": {"x'), JSON_OPEN);
  assert.equal(s.feed('": 1}'), JSON_OPEN);
  assert.equal(s.feed("}, more"), 1);
  for (
    const bad of [
      "x",
      '"string"',
      "1",
      "{a: 1}",
      '{"a" 1}',
      '{"a": tru }',
      "[1,,2]",
      "{]",
      '["\n"]',
    ]
  ) {
    assert.equal(createJsonScanner().feed(bad), JSON_INVALID, bad);
    assert.equal(scanByChar(bad), JSON_INVALID, bad);
  }
  const broken = createJsonScanner();
  assert.equal(broken.feed("{,"), JSON_INVALID);
  assert.equal(broken.feed("}"), JSON_INVALID, "stays invalid");
});
