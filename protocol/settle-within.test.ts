import assert from "node:assert/strict";
import { settleWithin } from "./settle-within.ts";

Deno.test("settleWithin: returns when the promise settles, or at the limit, and never throws", async () => {
  let late = false;
  const started = performance.now();
  await settleWithin(new Promise<void>((r) => setTimeout(() => (late = true, r()), 5000)), 20);
  assert.ok(performance.now() - started < 1000, "the limit, not the promise, ended the wait");
  assert.equal(late, false);
  await settleWithin(Promise.reject(new Error("gone")), 1000); // a failure is settled too
  await settleWithin(Promise.resolve(), 1000);
});
