import assert from "node:assert/strict";
import { createTokenBucket } from "./rate-limit.ts";

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
