import assert from "node:assert/strict";
import { parseStartBody } from "./node-start.ts";
import { healthRoute, type HealthState } from "./health.ts";

Deno.test("start body: sizes as --max-memory takes them, gpu, the model trimmed", () => {
  assert.deepEqual(
    parseStartBody({ mode: "serve", modelId: " stories260K ", maxMemory: "4GiB", gpu: true }),
    { mode: "serve", modelId: "stories260K", maxMemory: 4 * 1024 ** 3, gpu: true },
  );
  assert.equal(
    parseStartBody({ mode: "serve", modelId: "m", maxMemory: "512MB" }).maxMemory,
    512e6,
  );
  assert.equal(parseStartBody({ mode: "serve", modelId: "m", maxMemory: 1000 }).maxMemory, 1000);
  assert.deepEqual(parseStartBody({ mode: "client" }), { mode: "client" });
  for (const maxMemory of ["0", 0, 1.5, "4 parsecs", null]) {
    assert.throws(() => parseStartBody({ mode: "serve", modelId: "m", maxMemory }), /maxMemory/);
  }
});

Deno.test("health: 503 off, stopping and failed with the reason; 200 only when ok", async () => {
  let state: HealthState = "off";
  const health = healthRoute(() => state);
  const off = health();
  assert.equal(off.status, 503);
  assert.equal((await off.json()).status, "off");
  state = "stopping";
  assert.equal((await health().json()).status, "stopping");
  state = { status: "failed", reason: 'model "x" is not in the catalog' };
  const failed = health();
  assert.equal(failed.status, 503);
  const body = await failed.json();
  assert.equal(body.status, "failed");
  assert.equal(body.reason, 'model "x" is not in the catalog');
  assert.equal(body.error.message, 'model "x" is not in the catalog');
  state = "ok";
  assert.deepEqual(await health().json(), { status: "ok" });
});
