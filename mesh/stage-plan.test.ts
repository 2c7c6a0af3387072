import assert from "node:assert/strict";
import {
  type ModelShape,
  planId,
  planStages,
  stageBytes,
  type StageCandidate,
  type StagePlan,
} from "./stage-plan.ts";

const MiB = 1024 * 1024;
/** 8 layers of 10 MiB, 1 MiB of KV each, 4 MiB embeddings, 4 MiB head, 4 MiB scratch: 100 MiB. */
const shape: ModelShape = {
  layerBytes: Array(8).fill(10 * MiB),
  kvBytesPerLayer: 1 * MiB,
  firstBytes: 4 * MiB,
  lastBytes: 4 * MiB,
  scratchBytes: 4 * MiB,
};
const cand = (peerId: string, mib: number): StageCandidate => ({ peerId, memoryBytes: mib * MiB });

function planOf(candidates: StageCandidate[], s = shape): StagePlan {
  const outcome = planStages(s, candidates);
  if (!outcome.ok) throw new Error(outcome.reason);
  return outcome.plan;
}

/** Every plan covers every layer once, in order, each stage within its candidate's budget. */
function assertSound(plan: StagePlan, candidates: StageCandidate[], s = shape) {
  const budget = new Map(candidates.map((c) => [c.peerId, c.memoryBytes]));
  let next = 0;
  for (const stage of plan.stages) {
    assert.equal(stage.start, next);
    assert.ok(stage.end > stage.start);
    assert.equal(stage.bytes, stageBytes(s, stage.start, stage.end));
    assert.ok(stage.bytes <= budget.get(stage.peerId)!, `${stage.peerId} over its budget`);
    next = stage.end;
  }
  assert.equal(next, s.layerBytes.length);
}

Deno.test("stage plan: a candidate that holds the whole model serves it whole", () => {
  assert.equal(stageBytes(shape, 0, 8), 100 * MiB);
  const candidates = [cand("b", 60), cand("a", 100), cand("c", 120)];
  const plan = planOf(candidates);
  assert.deepEqual(plan.stages, [{ peerId: "c", start: 0, end: 8, bytes: 100 * MiB }]);
  assert.deepEqual(plan.spares, ["a", "b"]);
});

Deno.test("stage plan: two nodes too small alone split the layers, the same on every node", () => {
  const candidates = [cand("peer-b", 60), cand("peer-a", 60)];
  const plan = planOf(candidates);
  assertSound(plan, candidates);
  assert.deepEqual(plan.stages.map((s) => [s.peerId, s.start, s.end]), [
    ["peer-a", 0, 4],
    ["peer-b", 4, 8],
  ]);
  assert.deepEqual(plan.spares, []);
  // Any order of the same list gives the same plan and id; another list another id.
  assert.deepEqual(planOf([...candidates].reverse()), plan);
  assert.equal(plan.id, planId([cand("peer-a", 60), cand("peer-b", 60)]));
  assert.notEqual(plan.id, planId([cand("peer-a", 60), cand("peer-b", 61)]));
});

Deno.test("stage plan: layers follow the budgets", () => {
  const candidates = [cand("a", 30), cand("b", 90)];
  const plan = planOf(candidates);
  assertSound(plan, candidates);
  const [first, second] = plan.stages;
  assert.ok(first.end - first.start < second.end - second.start, JSON.stringify(plan.stages));
});

Deno.test("stage plan: the fewest candidates that suffice, the rest are spares", () => {
  const candidates = [cand("a", 40), cand("b", 45), cand("c", 45), cand("d", 20)];
  const plan = planOf(candidates);
  assertSound(plan, candidates);
  assert.deepEqual(plan.stages.map((s) => s.peerId), ["a", "b", "c"]);
  assert.deepEqual(plan.spares, ["d"]);
});

Deno.test("stage plan: uneven layers still find a cut within every budget", () => {
  const uneven: ModelShape = {
    ...shape,
    layerBytes: [40, 1, 1, 1, 1, 1, 1, 40].map((m) => m * MiB),
  };
  // 110 MiB for two stages; each end layer alone needs 49 of a stage's 56.
  const candidates = [cand("a", 56), cand("b", 56)];
  const plan = planOf(candidates, uneven);
  assertSound(plan, candidates, uneven);
});

Deno.test("stage plan: too little memory in all says how much more is needed", () => {
  const outcome = planStages(shape, [cand("a", 30), cand("b", 30)]);
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  // 100 MiB plus a second stage's scratch, against 60 MiB.
  assert.equal(outcome.missingBytes, 44 * MiB);
  assert.match(outcome.reason, /44\.0 MiB more needed/);
  const none = planStages(shape, []);
  assert.equal(none.ok, false);
  assert.throws(() => planStages(shape, [cand("a", 1), cand("a", 2)]), /once/);
});
