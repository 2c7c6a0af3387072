import assert from "node:assert/strict";
import { parseLimits, relayInitFromArgs } from "./relay-command.ts";

Deno.test("relay flags: --trust-proxy and --limit NAME=VALUE reach the relay's init", () => {
  const init = relayInitFromArgs([
    ...["--data", "/tmp/x", "--trust-proxy"],
    ...["--limit", "maxConnections=8192", "--limit", "idleTimeoutSeconds=30"],
  ]);
  assert.equal(init.trustProxy, true);
  assert.deepEqual(init.limits, { maxConnections: 8192, idleTimeoutSeconds: 30 });
  assert.equal(relayInitFromArgs(["--data", "/tmp/x"]).trustProxy, false);
});

Deno.test("relay flags: an unknown or non-positive --limit is refused by name", () => {
  assert.throws(() => parseLimits(["maxConections=5"]), /unknown limit; known: .*maxConnections/);
  assert.throws(() => parseLimits(["maxConnections=0"]), /needs a positive number/);
  assert.throws(() => parseLimits(["maxConnections"]), /needs a positive number/);
});
