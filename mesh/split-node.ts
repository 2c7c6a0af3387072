/**
 * A serving node's part in a split (docs/protocol.md, stages): the model does not fit its
 * `--max-memory`, so it is a stage candidate. From the relay's mesh status it learns the other
 * candidates for the same model (same sha256), computes the plan every candidate computes
 * (stage-plan.ts), loads its own range, and says in its serve reports what it holds. It answers
 * other coordinators' stage opens after checking their plan against its own view, and it
 * coordinates the requests that reach it (pipeline-batch.ts) over the plan it makes.
 */
import type { ModelShape, StageBatch } from "../inference/mod.ts";
import type { Logger, MeshStatus } from "../protocol/mod.ts";
import { type Clock, systemClock } from "./clock.ts";
import { createPipelineBatch, type PipelineBatch } from "./pipeline-batch.ts";
import { type StageCall, type StageLease, type StageOpen, StageRefusal } from "./stage-protocol.ts";
import { planId, planStages, type StageCandidate, type StagePlan } from "./stage-plan.ts";
import { ServiceError } from "./service.ts";

export type LayerRange = [number, number];

export interface SplitNodeInit {
  selfPeerId: string;
  sha256: string;
  shape: ModelShape;
  /** This node's `--max-memory`. */
  budget: number;
  ctxSize: number;
  vocabSize: number;
  maxSlots?: number;
  log?: Logger;
}

export interface SplitNodeComponents {
  /** Loads the layers [start, end) on this node. */
  loadStage(range: LayerRange): Promise<StageBatch>;
  /** A stage this node holds, called in process by its own coordinator; `release` on destroy. */
  localCall(stage: StageLease, peerId: string): StageCall;
  clock?: Clock;
}

/** The mesh side of a split node, attached while the node is in the mesh (role-serving.ts). */
export interface SplitLink {
  /** The relay's latest mesh status. */
  status(): MeshStatus | undefined;
  /** Opens a stage on a peer (`/grove/stage/1`); rejects with StageRefusal or a dial error. */
  connect(target: { peerId: string; addrs: string[] }, open: StageOpen): Promise<StageCall>;
  /** The node's serve report changed. */
  changed(): void;
}

export interface SplitReport {
  stages: LayerRange[];
  planId: string | null;
  state: "waiting" | "loading" | "ready";
}

export interface SplitNode {
  pipeline: PipelineBatch;
  /** Checks a coordinator's open against this node's view and returns the stage, loaded. */
  openStage(req: StageOpen, from: string): Promise<StageLease>;
  /** Fields of this node's serve report. */
  report(): SplitReport;
  /** For /api/status: the plan as this node sees it, or why it waits. */
  describe(): Record<string, unknown>;
  /** Re-reads the mesh status (call on each new one). */
  refresh(): void;
  /** Joins the mesh side: plans start to count the other candidates. */
  attach(link: SplitLink): void;
  /** Leaves it (the node left the mesh): running requests fail over or end. */
  detach(): void;
  stop(): void;
}

/** How long a peer a coordinator saw fail stays out of this node's plans. */
const DEAD_MS = 30_000;
/** How long a coordinator tries to assemble a plan before the request fails. */
const PLAN_DEADLINE_MS = 4_000;

export function createSplitNode(init: SplitNodeInit, c: SplitNodeComponents): SplitNode {
  const { selfPeerId: self, shape, sha256 } = init;
  const clock = c.clock ?? systemClock;
  const log = init.log;
  const deadUntil = new Map<string, number>();
  // Each loaded range and how many users (stage streams, own plans) hold it.
  const loaded = new Map<
    string,
    { batch: Promise<StageBatch>; users: number; ready?: StageBatch }
  >();
  let current: StagePlan | undefined;
  let waitingReason: string | undefined;
  let loadingKey: string | undefined;
  let stopped = false;
  let link: SplitLink | undefined;
  const changed = () => link?.changed();

  const keyOf = (r: LayerRange) => `${r[0]}-${r[1]}`;

  function candidates(): StageCandidate[] {
    const now = clock.now();
    const list: StageCandidate[] = [{ peerId: self, memoryBytes: init.budget }];
    for (const t of link?.status()?.serveTargets ?? []) {
      if (t.peerId === self || t.sha256 !== sha256 || t.stages === null) continue;
      if ((deadUntil.get(t.peerId) ?? 0) > now) continue;
      list.push({ peerId: t.peerId, memoryBytes: t.capacity.memoryBytes });
    }
    return list;
  }

  function ensureLoaded(range: LayerRange): Promise<StageBatch> {
    const key = keyOf(range);
    let entry = loaded.get(key);
    if (!entry) {
      log?.info(`loading layers ${range[0]}–${range[1] - 1} of ${shape.layerBytes.length}`);
      const p = c.loadStage(range);
      const fresh: { batch: Promise<StageBatch>; users: number; ready?: StageBatch } = {
        batch: p,
        users: 0,
      };
      entry = fresh;
      loaded.set(key, entry);
      p.then(
        (b) => {
          fresh.ready = b;
          log?.info(
            `layers ${range[0]}–${range[1] - 1} loaded: ${mib(b.info.weightBytes)} of weights ` +
              `on ${b.info.backend}, ${mib(b.info.bytesRead)} read from the file`,
          );
        },
        (err) => {
          loaded.delete(key);
          log?.error(`could not load layers ${range[0]}–${range[1] - 1}: ${err.message}`);
        },
      );
    }
    return entry.batch;
  }

  /** The range loaded and held until `release()`: a failover plan may differ from `current`. */
  async function hold(range: LayerRange): Promise<StageLease> {
    const loading = ensureLoaded(range);
    // Held from now, not from when it has loaded: a re-plan meanwhile must not close it.
    const entry = loaded.get(keyOf(range))!;
    entry.users++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.users--;
      prune();
    };
    try {
      return { batch: await loading, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Frees stages outside the current plan that nobody holds any more. */
  function prune(): void {
    const keep = new Set(
      current?.stages.filter((s) => s.peerId === self).map((s) => keyOf([s.start, s.end])) ?? [],
    );
    for (const [key, entry] of loaded) {
      if (keep.has(key) || entry.users > 0) continue;
      loaded.delete(key);
      entry.batch.then((b) => b.close(), () => {});
    }
  }

  function mine(plan: StagePlan | undefined) {
    return plan?.stages.find((s) => s.peerId === self);
  }

  function refresh(): void {
    if (stopped) return;
    const outcome = planStages(shape, candidates());
    if (!outcome.ok) {
      if (waitingReason !== outcome.reason) {
        log?.info(`split stage candidate waiting: ${outcome.reason}`);
        waitingReason = outcome.reason;
      }
      const was = current;
      current = undefined;
      if (was) changed();
      return;
    }
    waitingReason = undefined;
    const plan = outcome.plan;
    if (plan.id !== current?.id) {
      const own = mine(plan);
      log?.info(
        `split plan ${plan.id.slice(0, 8)}: ${
          plan.stages.map((s) => `${s.peerId.slice(-6)} [${s.start}, ${s.end})`).join(", ")
        }; this node ${own ? `holds layers [${own.start}, ${own.end})` : "is a spare"}`,
      );
      current = plan;
      changed();
    }
    const own = mine(plan);
    if (!own) return prune();
    const range: LayerRange = [own.start, own.end];
    const key = keyOf(range);
    if (!loaded.has(key)) {
      loadingKey = key;
      ensureLoaded(range).then(() => {
        if (loadingKey === key) loadingKey = undefined;
        prune();
        changed();
      }, () => {
        if (loadingKey === key) loadingKey = undefined;
        changed();
      });
      changed();
    } else prune(); // a range the plan no longer gives this node, once no one holds it
  }

  /** Whether every other stage of `plan` reports its range under this plan id. */
  function othersReady(plan: StagePlan): boolean {
    const targets = link?.status()?.serveTargets ?? [];
    return plan.stages.every((s) => {
      if (s.peerId === self) return true;
      const t = targets.find((t) => t.peerId === s.peerId);
      return t?.planId === plan.id && t.stages?.length === 1 &&
        t.stages[0][0] === s.start && t.stages[0][1] === s.end;
    });
  }

  function report(): SplitReport {
    const plan = current;
    const own = mine(plan);
    if (!plan) return { stages: [], planId: null, state: "waiting" };
    if (!own) return { stages: [], planId: plan.id, state: "ready" }; // a spare
    const key = keyOf([own.start, own.end]);
    if (loadingKey === key || !loaded.has(key)) {
      return { stages: [], planId: plan.id, state: "loading" };
    }
    // Stage 0 is where clients enter: it says so only once the whole plan is there.
    if (own.start === 0 && !othersReady(plan)) {
      return { stages: [], planId: plan.id, state: "loading" };
    }
    return { stages: [[own.start, own.end]], planId: plan.id, state: "ready" };
  }

  async function openStage(req: StageOpen, from: string): Promise<StageLease> {
    if (req.sha256 !== sha256) {
      throw new StageRefusal("plan_mismatch", "this node serves another model (sha256 differs)");
    }
    if (req.ctxSize !== init.ctxSize) {
      throw new StageRefusal(
        "plan_mismatch",
        `this node plans for --ctx-size ${init.ctxSize}, the coordinator for ${req.ctxSize}`,
      );
    }
    if (planId(req.candidates) !== req.planId) {
      throw new StageRefusal("invalid_request", "the plan id is not the hash of its candidates");
    }
    const known = new Map(candidates().map((k) => [k.peerId, k.memoryBytes]));
    for (const k of req.candidates) {
      if (k.peerId === from && !known.has(from)) continue; // a coordinator this node has not heard of yet
      if (known.get(k.peerId) !== k.memoryBytes) {
        throw new StageRefusal(
          "plan_mismatch",
          `candidate ${k.peerId.slice(-8)} is not one this node knows with that budget yet`,
        );
      }
    }
    const outcome = planStages(shape, req.candidates);
    const own = outcome.ok ? mine(outcome.plan) : undefined;
    if (!own || own.start !== req.range[0] || own.end !== req.range[1]) {
      throw new StageRefusal(
        "plan_mismatch",
        `this node computes ${own ? `layers [${own.start}, ${own.end})` : "no stage"} for plan ${
          req.planId.slice(0, 8)
        }, not [${req.range[0]}, ${req.range[1]})`,
      );
    }
    // The coordinator left out candidates this node still counts: it saw them fail. Leave them
    // out here too, so this node's own plan (and its reports) agree with the one it now serves.
    const inPlan = new Set(req.candidates.map((k) => k.peerId));
    const gone = [...known.keys()].filter((p) => !inPlan.has(p) && p !== self);
    for (const p of gone) deadUntil.set(p, clock.now() + DEAD_MS);
    const held = await hold(req.range);
    if (gone.length > 0) refresh();
    return held;
  }

  /** The coordinator's plan: the candidates minus `exclude`, every stage opened. */
  async function makePlan(exclude: ReadonlySet<string>) {
    const deadline = clock.now() + PLAN_DEADLINE_MS;
    const skip = new Set(exclude);
    for (const p of exclude) deadUntil.set(p, clock.now() + DEAD_MS);
    if (exclude.size > 0) refresh();
    let lastError = "";
    while (true) {
      const list = candidates().filter((k) => !skip.has(k.peerId));
      const outcome = planStages(shape, list);
      if (!outcome.ok) {
        throw new ServiceError("unavailable", `the split model cannot run now: ${outcome.reason}`);
      }
      const plan = outcome.plan;
      const targets = link?.status()?.serveTargets ?? [];
      const opened = await Promise.allSettled(plan.stages.map(async (s): Promise<StageCall> => {
        const range: LayerRange = [s.start, s.end];
        if (s.peerId === self) return c.localCall(await hold(range), self);
        const t = targets.find((t) => t.peerId === s.peerId);
        const open = { planId: plan.id, sha256, candidates: list, ctxSize: init.ctxSize, range };
        if (!link) throw new ServiceError("unavailable", "this node is not in the mesh");
        return await link.connect({ peerId: s.peerId, addrs: t?.addrs ?? [] }, open);
      }));
      const calls = opened.flatMap((o) => o.status === "fulfilled" ? [o.value] : []);
      if (calls.length === plan.stages.length) return { id: plan.id, stages: calls };
      for (const call of calls) call.destroy();
      let mismatch = false;
      opened.forEach((o, i) => {
        if (o.status === "fulfilled") return;
        const err = o.reason as Error;
        lastError = err.message;
        if (err instanceof StageRefusal && err.code === "plan_mismatch") mismatch = true;
        else if (plan.stages[i].peerId !== self) {
          skip.add(plan.stages[i].peerId);
          deadUntil.set(plan.stages[i].peerId, clock.now() + DEAD_MS);
          refresh();
        } else throw new ServiceError("unavailable", `this node's stage failed: ${err.message}`);
      });
      if (clock.now() >= deadline) {
        throw new ServiceError("unavailable", `no split plan came together: ${lastError}`);
      }
      // A peer that sees a different plan catches up with the next mesh status (≤ 2 s).
      if (mismatch) await new Promise<void>((r) => clock.setTimeout(() => r(), 250));
    }
  }

  const pipeline = createPipelineBatch({
    vocabSize: init.vocabSize,
    ctxSize: init.ctxSize,
    maxSlots: init.maxSlots,
    plan: makePlan,
    stale: (id) => current !== undefined && current.id !== id,
    log,
  });

  return {
    pipeline,
    openStage,
    report,
    refresh,
    attach(l) {
      link = l;
      refresh();
    },
    detach() {
      link = undefined;
      pipeline.close();
      refresh();
    },
    describe() {
      const plan = current;
      const r = report();
      return {
        state: r.state,
        reason: plan ? null : `waiting: ${waitingReason ?? "no plan yet"}`,
        planId: plan?.id ?? null,
        stages: plan?.stages.map((s) => ({ peerId: s.peerId, layers: [s.start, s.end] })) ?? [],
        spares: plan?.spares ?? [],
        layers: shape.layerBytes.length,
        holds: r.stages,
        // What this node loaded: its share of the file, not the model.
        loaded: [...loaded.values()].flatMap(({ ready }) =>
          ready
            ? [{
              layers: [ready.layerStart, ready.layerEnd],
              backend: ready.info.backend,
              weightBytes: ready.info.weightBytes,
              bytesRead: ready.info.bytesRead,
            }]
            : []
        ),
        coordinatorPlanId: pipeline.planId() ?? null,
      };
    },
    stop() {
      stopped = true;
      pipeline.close();
      for (const entry of loaded.values()) entry.batch.then((b) => b.close(), () => {});
      loaded.clear();
    },
  };
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
