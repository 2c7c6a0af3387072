import assert from "node:assert/strict";
import { createReplayCache } from "./replay-cache.ts";

Deno.test("replay cache: a recorded id is held until its ttl passes", () => {
  const cache = createReplayCache(120);
  assert.equal(cache.has("a", 1000), false);
  assert.equal(cache.has("a", 1000), false, "looking up records nothing");
  assert.equal(cache.record("a", 1000), true);
  assert.equal(cache.has("a", 1001), true);
  assert.equal(cache.has("a", 1119), true);
  assert.equal(cache.has("a", 1120), false, "forgotten after 120 s");
  assert.equal(cache.record("a", 1120), true, "and can be recorded again");
  assert.equal(cache.has("a", 1121), true);
});

Deno.test("replay cache: a full cache records nothing and forgets no live id", () => {
  const cache = createReplayCache(120, 3);
  for (const id of ["a", "b", "c"]) assert.equal(cache.record(id, 1000), true);
  assert.equal(cache.record("d", 1010), false, "full: refuses to record");
  assert.equal(cache.has("d", 1010), false);
  for (const id of ["a", "b", "c"]) assert.equal(cache.has(id, 1010), true, `${id} kept`);
  assert.equal(cache.record("a", 1010), true, "an id already held needs no room");
  assert.equal(cache.record("d", 1120), true, "a, b, c expired and were pruned");
  assert.equal(cache.size(1120), 1);
});
