/**
 * The split planner (docs/protocol.md, stages; issue 11): which candidates serve which contiguous
 * layer range of a model none of them can hold alone. A pure function of the model's shape and
 * the candidate list, so every candidate computes the same plan with no coordinator; the plan id
 * (a hash of the sorted candidates) lets two nodes that briefly see different lists refuse each
 * other instead of mixing plans.
 *
 * Policy, in order:
 * 1. A candidate that can hold the whole model serves it whole (the largest budget; ties by
 *    peer id): a hop costs latency, so a split is the last resort.
 * 2. Otherwise the fewest candidates whose budgets together cover the need, largest first; the
 *    rest stay spares for failover.
 * 3. Among those, layers are cut contiguously in peer-id order, each stage's share of the need in
 *    proportion to its budget, never over a budget. Stage 0 also holds the embeddings, the last
 *    stage the output norm and head.
 */
import { createHash } from "node:crypto";
import { type ModelShape, stageBytes } from "../inference/mod.ts";

// The model's needs by part and what a stage of it holds are the inference side's
// (inference/model-shape.ts): re-exported for the planner's users.
export { stageBytes };
export type { ModelShape };

export interface StageCandidate {
  peerId: string;
  /** The node's `--max-memory` budget. */
  memoryBytes: number;
}

export interface Stage {
  peerId: string;
  /** Layers [start, end). */
  start: number;
  end: number;
  /** What this stage needs in memory. */
  bytes: number;
}

export interface StagePlan {
  /** Hash of the sorted candidate list the plan was made from. */
  id: string;
  stages: Stage[];
  /** Candidates outside the plan, for failover. */
  spares: string[];
}

export type PlanOutcome =
  | { ok: true; plan: StagePlan }
  | { ok: false; missingBytes: number; reason: string };

/** The plan id: SHA-256 of the candidates sorted by peer id, "peerId:budget" per line. */
export function planId(candidates: readonly StageCandidate[]): string {
  const lines = sortById(candidates).map((c) => `${c.peerId}:${c.memoryBytes}`).join("\n");
  return createHash("sha256").update(lines).digest("hex");
}

export function planStages(shape: ModelShape, candidates: readonly StageCandidate[]): PlanOutcome {
  const layers = shape.layerBytes.length;
  if (layers === 0) throw new Error("a model to plan has at least one layer");
  const ids = new Set(candidates.map((c) => c.peerId));
  if (ids.size !== candidates.length) throw new Error("each candidate appears once in a plan");
  const id = planId(candidates);
  const whole = stageBytes(shape, 0, layers);
  const bySize = [...candidates].sort((a, b) =>
    b.memoryBytes - a.memoryBytes || compareIds(a.peerId, b.peerId)
  );
  if (bySize.length === 0) {
    return { ok: false, missingBytes: whole, reason: "no candidate serves this model yet" };
  }
  if (bySize[0].memoryBytes >= whole) {
    const single = bySize[0];
    return {
      ok: true,
      plan: {
        id,
        stages: [{ peerId: single.peerId, start: 0, end: layers, bytes: whole }],
        spares: sortById(bySize.slice(1)).map((c) => c.peerId),
      },
    };
  }
  // Each extra stage needs its own scratch: the need grows with the number of stages.
  for (let n = 2; n <= Math.min(bySize.length, layers); n++) {
    const chosen = sortById(bySize.slice(0, n));
    const stages = cut(shape, chosen, "proportional") ?? cut(shape, chosen, "fill");
    if (stages) {
      const inPlan = new Set(chosen.map((c) => c.peerId));
      const spares = sortById(candidates).map((c) => c.peerId).filter((p) => !inPlan.has(p));
      return { ok: true, plan: { id, stages, spares } };
    }
  }
  const total = candidates.reduce((sum, c) => sum + c.memoryBytes, 0);
  const need = whole + (Math.min(candidates.length, layers) - 1) * shape.scratchBytes;
  const missingBytes = Math.max(need - total, minLayerShortfall(shape, bySize));
  return {
    ok: false,
    missingBytes,
    reason: `${formatMiB(missingBytes)} more needed`,
  };
}

/**
 * Contiguous ranges for `chosen` (in peer-id order), each within its budget; undefined when this
 * way of cutting finds none. "proportional" stops each stage near its budget's share of the need;
 * "fill" (when uneven layers defeat that) lets each stage take all its budget allows.
 */
function cut(
  shape: ModelShape,
  chosen: readonly StageCandidate[],
  how: "proportional" | "fill",
): Stage[] | undefined {
  const layers = shape.layerBytes.length;
  const budgets = chosen.reduce((sum, c) => sum + c.memoryBytes, 0);
  const need = stageBytes(shape, 0, layers) + (chosen.length - 1) * shape.scratchBytes;
  const stages: Stage[] = [];
  let start = 0;
  let budgetSoFar = 0;
  for (let i = 0; i < chosen.length; i++) {
    const c = chosen[i];
    const left = chosen.length - i - 1;
    budgetSoFar += c.memoryBytes;
    const targetEnd = need * (budgetSoFar / budgets); // cumulative need this stage should reach
    let end = start + 1;
    if (left === 0) end = layers;
    else {
      // Grow while the stage fits its budget, leaves a layer for each later stage, and has not
      // passed its proportional share.
      while (
        end < layers - left &&
        stageBytes(shape, start, end + 1) <= c.memoryBytes &&
        (how === "fill" || cumulative(shape, end + 1, i + 1) <= targetEnd)
      ) end++;
    }
    const bytes = stageBytes(shape, start, end);
    if (bytes > c.memoryBytes) return undefined;
    stages.push({ peerId: c.peerId, start, end, bytes });
    start = end;
  }
  return stages;
}

/** The need of layers [0, end) spread over `stageCount` stages (their scratch included). */
function cumulative(shape: ModelShape, end: number, stageCount: number): number {
  return stageBytes(shape, 0, end) + (stageCount - 1) * shape.scratchBytes;
}

/** A stage holds at least one layer: the largest single layer must fit the largest budget. */
function minLayerShortfall(shape: ModelShape, bySize: readonly StageCandidate[]): number {
  const layers = shape.layerBytes.length;
  let worst = 0;
  for (let l = 0; l < layers; l++) worst = Math.max(worst, stageBytes(shape, l, l + 1));
  return Math.max(0, worst - (bySize[0]?.memoryBytes ?? 0));
}

function sortById(candidates: readonly StageCandidate[]): StageCandidate[] {
  return [...candidates].sort((a, b) => compareIds(a.peerId, b.peerId));
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
