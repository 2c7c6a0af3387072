import assert from "node:assert/strict";
import { fakeClock } from "./fake-clock.ts";

Deno.test("fake clock: timers run at their own time, in order; intervals repeat until cleared", async () => {
  const clock = fakeClock(1000);
  const ran: string[] = [];
  clock.setTimeout(() => ran.push(`b@${clock.now()}`), 20);
  clock.setTimeout(() => ran.push(`a@${clock.now()}`), 10);
  const gone = clock.setTimeout(() => ran.push("cleared"), 15);
  clock.clearTimeout(gone);
  const every = clock.setInterval(() => ran.push(`i@${clock.now()}`), 8);
  await clock.advance(9);
  assert.deepEqual(ran, ["i@1008"]);
  assert.equal(clock.now(), 1009);
  await clock.advance(16);
  assert.deepEqual(ran, ["i@1008", "a@1010", "i@1016", "b@1020", "i@1024"]);
  clock.clearInterval(every);
  await clock.advance(100);
  assert.equal(ran.length, 5);
  assert.equal(clock.pending(), 0);
});

Deno.test("fake clock: promise work a timer starts settles before the next timer runs", async () => {
  const clock = fakeClock();
  const seen: string[] = [];
  clock.setTimeout(() => {
    void Promise.resolve().then(() => Promise.resolve()).then(() => seen.push("chain"));
  }, 5);
  clock.setTimeout(() => seen.push("next"), 6);
  await clock.advance(10);
  assert.deepEqual(seen, ["chain", "next"]);
});
