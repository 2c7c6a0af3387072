import assert from "node:assert/strict";
import { DEAD_STAGE_MS, stageDeadline } from "./stage-deadline.ts";
import type { StageCall } from "./stage-messages.ts";

function stageTaking(ms: () => number, clock: { t: number }): StageCall {
  return {
    peerId: "p",
    range: [0, 1],
    step() {
      clock.t += ms();
      return Promise.resolve({ hidden: new Float32Array(0) });
    },
    close() {},
    destroy() {},
  };
}

const rows = (n: number) => [{ session: "s", tokens: Array(n).fill(1), sample: false }];

Deno.test("a stage's step deadline is 3 s plus the time it has shown it needs", async () => {
  const clock = { t: 0 };
  let perStep = 5;
  const d = stageDeadline(() => clock.t);
  assert.equal(d.stepTimeoutMs(1), DEAD_STAGE_MS + 10, "unmeasured: 10 ms a row");
  const call = d.measure(stageTaking(() => perStep, clock));
  await call.step(rows(1));
  assert.equal(d.stepTimeoutMs(1), DEAD_STAGE_MS + 15, "5 ms a row measured, three times over");
  // A slow stage (a big model on a CPU): 2 s a decode step is no death.
  perStep = 2000;
  await call.step(rows(1));
  assert.ok(d.stepTimeoutMs(1) >= DEAD_STAGE_MS + 6000);
  // Faster again: the deadline comes down gently, never below the first guess.
  perStep = 1;
  for (let i = 0; i < 60; i++) await call.step(rows(16));
  assert.equal(d.stepTimeoutMs(1), DEAD_STAGE_MS + 10);
  assert.equal(call.peerId, "p", "the wrapped stage keeps its face");
});
