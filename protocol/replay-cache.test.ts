import assert from "node:assert/strict";
import { createReplayCache } from "./replay-cache.ts";

Deno.test("replay cache: an id is seen until its ttl passes", () => {
  const cache = createReplayCache(120);
  assert.equal(cache.seen("a", 1000), false);
  assert.equal(cache.seen("a", 1001), true);
  assert.equal(cache.seen("a", 1119), true);
  assert.equal(cache.seen("a", 1120), false, "forgotten after 120 s, then recorded again");
  assert.equal(cache.seen("a", 1121), true);
});

Deno.test("replay cache: a full cache refuses new ids until old ones expire", () => {
  const cache = createReplayCache(120, 3);
  for (const id of ["a", "b", "c"]) assert.equal(cache.seen(id, 1000), false);
  assert.equal(cache.seen("d", 1010), true, "full: fails closed");
  assert.equal(cache.seen("d", 1120), false, "a, b, c expired and were pruned");
});
