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

Deno.test("router: spreads concurrent requests, forgets a failure after 10 s", () => {
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
  clock = 9_999;
  router.markFailed("b");
  assert.equal(router.pick(ts)?.peerId, "a", "a's mark ends first");
  clock = 10_000;
  assert.equal(router.pick(ts)?.peerId, "a");
  assert.equal(router.pick(ts, new Set(["a", "b"])), undefined);
  router.markFailed("b");
  router.markOk("b", 2);
  assert.equal(router.pick(ts, new Set(["a"]))?.peerId, "b", "a success clears the mark");
});

/** A small seeded generator (mulberry32), so the Monte Carlo runs below are the same each time. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 50 client nodes, each with its own router, keep 4 requests each in flight over 10 serving
 * nodes; every node's reported load is refreshed once a "second" (10 ticks), so between reports
 * all routers see the same stale view. Returns each node's mean true load over the run and the
 * spread (largest distance from the mean, relative to it), as the scale bench measures it, and the
 * highest load any node had at any tick, relative to the mean.
 */
function simulate(
  choices: number | undefined,
): { loads: number[]; spread: number; peak: number } {
  const rand = seeded(14);
  const ids = Array.from({ length: 10 }, (_, i) => `n${i}`);
  const truth = new Map(ids.map((id) => [id, 0]));
  let reported = ids.map((id) => target(id));
  const routers = Array.from(
    { length: 50 },
    (_, i) => createRouter({ now: () => 0, choices, random: seeded(100 + i) }),
  );
  const running: { peer: string; left: number; end: () => void; router: number }[] = [];
  const start = (r: number) => {
    const t = routers[r].pick(reported)!;
    truth.set(t.peerId, truth.get(t.peerId)! + 1);
    // A node's answers take longer the more it runs (a shared CPU), 2 to 6 ticks when unloaded.
    const left = Math.ceil((2 + rand() * 4) * (1 + truth.get(t.peerId)! / 20));
    running.push({ peer: t.peerId, left, end: routers[r].begin(t.peerId), router: r });
  };
  for (let r = 0; r < routers.length; r++) for (let k = 0; k < 4; k++) start(r);
  const sums = new Map(ids.map((id) => [id, 0]));
  const ticks = 2000;
  let peak = 0;
  for (let tick = 0; tick < ticks; tick++) {
    if (tick % 10 === 0) reported = ids.map((id) => target(id, truth.get(id)!));
    for (const id of ids) {
      sums.set(id, sums.get(id)! + truth.get(id)!);
      if (tick >= 10) peak = Math.max(peak, truth.get(id)!);
    }
    for (const req of [...running]) {
      if (--req.left > 0) continue;
      running.splice(running.indexOf(req), 1);
      req.end();
      truth.set(req.peer, truth.get(req.peer)! - 1);
      start(req.router);
    }
  }
  const loads = ids.map((id) => sums.get(id)! / ticks);
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  return {
    loads,
    spread: Math.max(...loads.map((l) => Math.abs(l - mean))) / mean,
    peak: peak / mean,
  };
}

Deno.test("router: 50 routers on the same stale reports spread 200 requests within 20 % of the mean", () => {
  const twoChoices = simulate(undefined); // the router's default
  assert.ok(
    twoChoices.spread <= 0.2,
    `spread ${twoChoices.spread.toFixed(3)}: ${twoChoices.loads.map((l) => l.toFixed(1))}`,
  );
  // Each taking the least loaded of the same stale view herds: right after a report most of the
  // requests land on its least loaded node (9× the mean at the peak), two choices never pile up so.
  const leastLoaded = simulate(Infinity);
  assert.ok(twoChoices.peak < 4, `two choices peak ${twoChoices.peak.toFixed(2)}× the mean`);
  assert.ok(leastLoaded.peak > 6, `least loaded peak ${leastLoaded.peak.toFixed(2)}× the mean`);
});

Deno.test("pickTarget: with two choices, the less loaded of two drawn targets wins", () => {
  const ts = [target("a", 5), target("b", 1), target("c", 3)];
  // The dice draw a then c (index 0, then index 1 of what is left after the swap: c).
  const dice = [0, 0.99];
  const random = () => dice.shift()!;
  assert.equal(pickTarget(ts, empty({ choices: 2, random }))?.peerId, "c");
  // Over many draws, the most loaded target never wins, the least loaded most often.
  const rand = seeded(7);
  const wins = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const id = pickTarget(ts, empty({ choices: 2, random: rand }))!.peerId;
    wins.set(id, (wins.get(id) ?? 0) + 1);
  }
  assert.equal(wins.get("a"), undefined);
  assert.ok(wins.get("b")! > 1800 && wins.get("c")! > 800, JSON.stringify([...wins]));
});
