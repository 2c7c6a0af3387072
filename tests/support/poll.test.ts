import assert from "node:assert/strict";
import { eventually } from "./poll.ts";

Deno.test("eventually returns the probe's first value that is not pending", async () => {
  let calls = 0;
  const got = await eventually(() => ++calls >= 3 ? `after ${calls}` : undefined, {
    what: "never",
    intervalMs: 1,
  });
  assert.equal(got, "after 3");
  // 0 and "" are values, not pending: only undefined, null and false wait.
  assert.equal(await eventually(() => 0, { what: "never" }), 0);
  assert.equal(await eventually(async () => await Promise.resolve(true), { what: "never" }), true);
});

Deno.test("eventually with until waits for an accepted value and returns it", async () => {
  let n = 0;
  const got = await eventually(() => ++n, { what: "never", intervalMs: 1, until: (v) => v > 4 });
  assert.equal(got, 5);
});

Deno.test("eventually names what did not happen and the last value on timeout", async () => {
  let n = 0;
  await assert.rejects(
    eventually(() => ({ seen: ++n }), {
      what: () => `only ${n} tries`,
      timeoutMs: 30,
      intervalMs: 5,
      until: () => false,
    }),
    (err: Error) => {
      assert.match(err.message, /^only \d+ tries \(waited 30 ms; last value: \{"seen":\d+\}\)$/);
      assert.ok(n >= 2, `probed ${n} times`);
      assert.equal(err.message, `only ${n} tries (waited 30 ms; last value: {"seen":${n}})`);
      return true;
    },
  );
});

Deno.test("eventually ends at once with the probe's own error", async () => {
  let n = 0;
  await assert.rejects(
    eventually(() => {
      n++;
      throw new Error("probe broke");
    }, { what: "never", timeoutMs: 5000 }),
    /^Error: probe broke$/,
  );
  assert.equal(n, 1);
});
