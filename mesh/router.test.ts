import assert from "node:assert/strict";
import type { ServeTarget } from "../protocol/mod.ts";
import { createRouter, pickTarget, type RouteView } from "./router.ts";

function target(peerId: string, active = 0, queued = 0): ServeTarget {
  return {
    modelId: "stories260K",
    modelName: "stories260K",
    peerId,
    pubkey: "0".repeat(64),
    nodeName: peerId,
    addrs: [],
    stages: null,
    capacity: { memoryBytes: 1 },
    load: { active, queued },
  };
}

const empty = (over: Partial<RouteView> = {}): RouteView => ({
  active: new Map(),
  latencyMs: new Map(),
  failedUntil: new Map(),
  now: 1000,
  ...over,
});

Deno.test("pickTarget: the least loaded target wins, reported and own requests both count", () => {
  const ts = [target("a", 2), target("b", 0, 1), target("c", 1)];
  assert.equal(pickTarget(ts, empty())?.peerId, "b");
  // Two requests this node sent to b since its last report outweigh the reports.
  const view = empty({ active: new Map([["b", 2]]) });
  assert.equal(pickTarget(ts, view)?.peerId, "c");
});

Deno.test("pickTarget: equal targets take turns; a far one waits while a near one is free", () => {
  const ts = [target("b"), target("a"), target("c")];
  const latencyMs = new Map([["a", 1], ["b", 3], ["c", 200]]);
  const picks = [0, 1, 2, 3].map((turn) => pickTarget(ts, empty({ latencyMs, turn }))?.peerId);
  assert.deepEqual(picks, ["a", "b", "a", "b"]);
  // Once the near ones are busier, the far one gets work.
  const active = new Map([["a", 1], ["b", 1]]);
  assert.equal(pickTarget(ts, empty({ latencyMs, active }))?.peerId, "c");
});

Deno.test("pickTarget: failed peers come last, tried ones never; none left → undefined", () => {
  const ts = [target("a"), target("b")];
  assert.equal(pickTarget(ts, empty({ failedUntil: new Map([["a", 5000]]) }))?.peerId, "b");
  assert.equal(pickTarget(ts, empty({ failedUntil: new Map([["a", 500]]) }))?.peerId, "a");
  const bothFailed = new Map([["a", 9000], ["b", 5000]]);
  assert.equal(pickTarget(ts, empty({ failedUntil: bothFailed }))?.peerId, "b", "soonest back");
  const onlyA = empty({ failedUntil: bothFailed, exclude: new Set(["b"]) });
  assert.equal(pickTarget(ts, onlyA)?.peerId, "a");
  assert.equal(pickTarget(ts, empty({ exclude: new Set(["a", "b"]) })), undefined);
  assert.equal(pickTarget([], empty()), undefined);
});

Deno.test("router: spreads concurrent requests, forgets a failure after 30 s", () => {
  let clock = 0;
  const router = createRouter({ now: () => clock });
  const ts = [target("a"), target("b")];
  const ends = [];
  const counts = new Map<string, number>();
  for (let i = 0; i < 8; i++) {
    const t = router.pick(ts)!;
    counts.set(t.peerId, (counts.get(t.peerId) ?? 0) + 1);
    ends.push(router.begin(t.peerId));
  }
  assert.deepEqual([...counts.entries()].sort(), [["a", 4], ["b", 4]]);
  for (const end of ends) end();
  assert.equal(router.activeOn("a"), 0);

  router.markFailed("a");
  for (let i = 0; i < 4; i++) assert.equal(router.pick(ts)?.peerId, "b");
  clock = 29_999;
  router.markFailed("b");
  assert.equal(router.pick(ts)?.peerId, "a", "a's mark ends first");
  clock = 30_000;
  assert.equal(router.pick(ts)?.peerId, "a");
  assert.equal(router.pick(ts, new Set(["a", "b"])), undefined);
  router.markFailed("b");
  router.markOk("b", 2);
  assert.equal(router.pick(ts, new Set(["a"]))?.peerId, "b", "a success clears the mark");
});
