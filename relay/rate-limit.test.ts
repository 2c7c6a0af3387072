import assert from "node:assert/strict";
import { createKeyedBuckets, createTokenBucket } from "./rate-limit.ts";

Deno.test("token bucket: a burst passes, the next is refused, time refills it", () => {
  let t = 1000;
  const bucket = createTokenBucket(60, () => t, 3);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
  t += 1; // 60 per minute: one token a second
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
  t += 100; // refills only up to the burst
  for (let i = 0; i < 3; i++) assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
});

Deno.test("token bucket: a clock that goes backwards adds no tokens", () => {
  let t = 1000;
  const bucket = createTokenBucket(60, () => t, 1);
  assert.equal(bucket.take(), true);
  t -= 50;
  assert.equal(bucket.take(), false);
});

Deno.test("token bucket: a refund gives a token back; retryAfter says when one is there", () => {
  let t = 1000;
  const bucket = createTokenBucket(60, () => t, 2);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), true);
  assert.equal(bucket.retryAfter(), 1);
  bucket.refund();
  assert.equal(bucket.retryAfter(), 0);
  assert.equal(bucket.take(), true);
  t += 0.5;
  assert.equal(bucket.retryAfter(), 0.5);
});

Deno.test("keyed buckets: one per key, full ones forgotten, an overflow bucket past the cap", () => {
  let t = 1000;
  const buckets = createKeyedBuckets(60, () => t, 1, 3);
  assert.equal(buckets.of("a").take(), true);
  assert.equal(buckets.of("a").take(), false, "a's own bucket");
  assert.equal(buckets.of("b").take(), true, "b is not a");
  assert.equal(buckets.of("c").take(), true);
  assert.equal(buckets.of("d").take(), true, "past 3 keys: the overflow bucket");
  assert.equal(buckets.of("e").take(), false, "shared with d");
  t += 10; // every bucket is full again: forgotten as new keys come
  assert.equal(buckets.of("f").take(), true);
  assert.ok(buckets.size() <= 3);
});
