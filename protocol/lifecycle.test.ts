import assert from "node:assert/strict";
import { compose, type Startable } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";

function recorder() {
  const events: string[] = [];
  const part = (name: string, fail?: "start" | "stop"): Startable => ({
    name,
    start() {
      events.push(`start ${name}`);
      if (fail === "start") throw new Error(`${name} cannot start`);
    },
    stop() {
      events.push(`stop ${name}`);
      if (fail === "stop") throw new Error(`${name} is stuck`);
    },
  });
  const warnings: string[] = [];
  const log: Logger = { info() {}, warn: (m) => warnings.push(m), error() {} };
  return { events, part, warnings, log };
}

Deno.test("lifecycle: parts start in order and stop in reverse, once", async () => {
  const r = recorder();
  const c = compose([r.part("a"), r.part("b"), r.part("c")], r.log);
  await c.startAll();
  await Promise.all([c.stop(), c.stop()]);
  await c.stop();
  assert.deepEqual(r.events, ["start a", "start b", "start c", "stop c", "stop b", "stop a"]);
});

Deno.test("lifecycle: a failed start stops what had started and rethrows", async () => {
  const r = recorder();
  const c = compose([r.part("a"), r.part("b", "start"), r.part("c")], r.log);
  await assert.rejects(c.startAll(), /b cannot start/);
  assert.deepEqual(r.events, ["start a", "start b", "stop a"]);
});

Deno.test("lifecycle: a part that fails to stop is logged and the others still stop", async () => {
  const r = recorder();
  const c = compose([r.part("a"), r.part("b", "stop"), r.part("c")], r.log);
  await c.startAll();
  await c.stop();
  assert.deepEqual(r.events.slice(3), ["stop c", "stop b", "stop a"]);
  assert.deepEqual(r.warnings, ["the b failed to stop cleanly: b is stuck"]);
});
