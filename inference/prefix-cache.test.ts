import assert from "node:assert/strict";
import { commonPrefix, createPrefixCache, reusableTokens } from "./prefix-cache.ts";

Deno.test("prefix cache: the reusable part stops short of the prompt's last token", () => {
  assert.equal(commonPrefix([1, 2, 3], [1, 2, 4]), 2);
  assert.equal(reusableTokens([1, 2, 3], [1, 2, 3, 4], true), 3);
  assert.equal(reusableTokens([1, 2, 3], [1, 2, 3], true), 2, "the last token is read again");
  assert.equal(reusableTokens([1, 2, 3], [1, 2, 9], true), 2);
  assert.equal(reusableTokens([5], [1, 2], true), 0);
  // Without partial rewinds only a cache that is all a prefix of the prompt counts.
  assert.equal(reusableTokens([1, 2, 3], [1, 2, 9], false), 0);
  assert.equal(reusableTokens([1, 2, 3], [1, 2, 3], false), 0);
  assert.equal(reusableTokens([1, 2, 3], [1, 2, 3, 4], false), 3);
});

Deno.test("prefix cache: matches only the owner's entries, the longest; the oldest goes first", () => {
  const cache = createPrefixCache();
  cache.put(0, "A", [1, 2, 3, 4]);
  cache.put(1, "A", [1, 2, 7]);
  cache.put(2, "B", [1, 2, 3, 4, 5, 6]);
  assert.equal(cache.best("A", [1, 2, 3, 4, 5, 6, 7])?.entry.slot, 0);
  assert.equal(cache.best("A", [1, 2, 3, 4, 5, 6, 7])?.reuse, 4);
  assert.equal(cache.best("C", [1, 2, 3]), undefined);
  assert.equal(cache.oldest()?.slot, 0);
  cache.take(0);
  cache.put(0, "A", [1, 2, 3, 4]);
  assert.equal(cache.oldest()?.slot, 1, "re-cached: the most recent now");
  cache.refusePartial();
  assert.equal(cache.best("A", [1, 2, 3, 9]), undefined);
  assert.equal(cache.best("A", [1, 2, 7, 9])?.reuse, 3);
  assert.equal(cache.size, 3);
});
