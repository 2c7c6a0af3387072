import assert from "node:assert/strict";
import type { ModelShape, StageBatch } from "../inference/mod.ts";
import type { MeshStatus, ServeTarget } from "../protocol/mod.ts";
import { createSplitNode, type SplitLink } from "./split-node.ts";
import { planId, planStages, type StageCandidate } from "./stage-plan.ts";
import type { StageCall, StageOpen } from "./stage-messages.ts";
import { StageRefusal } from "./stage-messages.ts";

const MiB = 1024 * 1024;
/** 6 layers of 10 MiB: 64 MiB whole with its embeddings, head and scratch. */
const shape: ModelShape = {
  layerBytes: Array(6).fill(10 * MiB),
  kvBytesPerLayer: 0,
  firstBytes: 1 * MiB,
  lastBytes: 1 * MiB,
  scratchBytes: 2 * MiB,
};
const SHA = "ab".repeat(32);
const BUDGET = 40 * MiB; // two such nodes are needed

function target(peerId: string, extra: Partial<ServeTarget> = {}): ServeTarget {
  return {
    modelId: "m",
    modelName: "m",
    peerId,
    pubkey: "00".repeat(32),
    nodeName: peerId,
    addrs: [],
    stages: [],
    capacity: { memoryBytes: BUDGET },
    load: { active: 0, queued: 0 },
    sha256: SHA,
    planId: null,
    ...extra,
  };
}

function status(...targets: ServeTarget[]): MeshStatus {
  return {
    v: 1,
    type: "mesh-status",
    updatedAt: 0,
    meshId: "x",
    serveTargets: targets,
    models: [],
    peerCount: targets.length,
  };
}

/** A split node "b" whose loads are recorded and resolve when the test says. */
function node(self = "b") {
  const loads: string[] = [];
  const closed: string[] = [];
  let mesh = status();
  const fakeStage = (start: number, end: number) =>
    ({
      layerStart: start,
      layerEnd: end,
      info: { backend: "cpu", weightBytes: 1, bytesRead: 1 },
      close: () => closed.push(`${start}-${end}`),
    }) as unknown as StageBatch;
  const split = createSplitNode({
    selfPeerId: self,
    sha256: SHA,
    shape,
    budget: BUDGET,
    ctxSize: 256,
    vocabSize: 32,
  }, {
    loadStage: ([start, end]) => {
      loads.push(`${start}-${end}`);
      return Promise.resolve(fakeStage(start, end));
    },
    localCall: (lease, peerId) => ({ peerId, destroy: lease.release }) as unknown as StageCall,
  });
  const link: SplitLink = {
    status: () => mesh,
    connect: () => Promise.reject(new Error("no network in this test")),
    changed: () => {},
  };
  return {
    split,
    loads,
    closed,
    link,
    setStatus(s: MeshStatus) {
      mesh = s;
      split.refresh();
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));
const cands = (...ids: string[]): StageCandidate[] =>
  ids.map((peerId) => ({ peerId, memoryBytes: BUDGET }));

function openFor(candidates: StageCandidate[], self: string, extra: Partial<StageOpen> = {}) {
  const outcome = planStages(shape, candidates);
  if (!outcome.ok) throw new Error(outcome.reason);
  const own = outcome.plan.stages.find((s) => s.peerId === self)!;
  return {
    planId: planId(candidates),
    sha256: SHA,
    candidates,
    ctxSize: 256,
    range: [own.start, own.end] as [number, number],
    ...extra,
  };
}

Deno.test("a lone candidate waits, saying how much is missing; with a peer it loads its range", async () => {
  const n = node();
  n.split.attach(n.link);
  assert.deepEqual(n.split.report(), { stages: [], planId: null, state: "waiting" });
  assert.match(String(n.split.describe().reason), /^waiting: \d+\.\d MiB more needed$/);
  n.setStatus(status(target("a")));
  const plan = planStages(shape, cands("a", "b"));
  assert.ok(plan.ok);
  const mine = plan.plan.stages.find((s) => s.peerId === "b")!;
  await settle();
  assert.deepEqual(n.loads, [`${mine.start}-${mine.end}`]);
  // "b" is the last stage: it reports its range once loaded.
  assert.deepEqual(n.split.report(), {
    stages: [[mine.start, mine.end]],
    planId: plan.plan.id,
    state: "ready",
  });
});

Deno.test("stage 0 enters the mesh only once every other stage reports its range", async () => {
  const n = node("a"); // "a" sorts first: stage 0
  n.split.attach(n.link);
  n.setStatus(status(target("b")));
  await settle();
  const plan = planStages(shape, cands("a", "b"));
  assert.ok(plan.ok);
  assert.equal(n.split.report().state, "loading", "b has not said it holds its layers");
  const b = plan.plan.stages[1];
  n.setStatus(status(target("b", { planId: plan.plan.id, stages: [[b.start, b.end]] })));
  assert.deepEqual(n.split.report().stages, [[0, b.start]]);
});

Deno.test("a stage refuses an open its own view does not back, naming why", async () => {
  const n = node();
  n.split.attach(n.link);
  n.setStatus(status(target("a")));
  const good = openFor(cands("a", "b"), "b");
  const refused = async (req: StageOpen, re: RegExp) =>
    await assert.rejects(
      n.split.openStage(req, "a"),
      (e: unknown) => e instanceof StageRefusal && re.test(e.message),
    );
  await refused({ ...good, sha256: "cd".repeat(32) }, /another model/);
  await refused({ ...good, ctxSize: 512 }, /--ctx-size 256/);
  await refused({ ...good, planId: "ef".repeat(32) }, /not the hash of its candidates/);
  await refused(openFor(cands("a", "b", "z"), "b"), /candidate .*z is not one this node knows/);
  await refused({ ...good, range: [0, 1] }, /this node computes layers/);
  const lease = await n.split.openStage(good, "a");
  assert.equal(lease.batch.layerStart, good.range[0]);
  lease.release();
});

Deno.test("an open that leaves out a peer the coordinator saw fail is adopted, and its stage is held", async () => {
  const n = node("b");
  n.split.attach(n.link);
  // a, b, c known; two suffice, so the plan is a + b and c is a spare.
  n.setStatus(status(target("a"), target("c")));
  await settle();
  const before = planStages(shape, cands("a", "b", "c"));
  assert.ok(before.ok);
  const old = before.plan.stages.find((s) => s.peerId === "b")!;
  assert.deepEqual(n.loads, [`${old.start}-${old.end}`]);
  // The coordinator "c" saw "a" die: its plan is b + c, which gives b another range.
  const req = openFor(cands("b", "c"), "b");
  assert.notDeepEqual(req.range, [old.start, old.end]);
  const lease = await n.split.openStage(req, "c");
  await settle();
  assert.ok(
    n.closed.includes(`${old.start}-${old.end}`),
    "the old range, held by no one, is freed",
  );
  assert.equal(n.split.describe().planId, planId(cands("b", "c")), "b now plans without a");
  // A status that still lists "a" changes nothing for 30 s.
  n.setStatus(status(target("a"), target("c")));
  assert.equal(n.split.describe().planId, planId(cands("b", "c")));
  assert.deepEqual(n.closed.includes(`${req.range[0]}-${req.range[1]}`), false, "held: not closed");
  lease.release();
});
