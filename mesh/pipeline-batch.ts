/**
 * The coordinator's side of a split model (docs/protocol.md, stages): a BatchEngine whose steps
 * walk the plan's stages in order — stage 0 embeds the rows' tokens, every stage runs its layers
 * on the hidden states the previous one returned, the last stage samples — so the ordinary
 * scheduler (continuous batching, stop strings, logprobs) runs a split model unchanged. Stages
 * are reached through `StageCall`s: in process for the coordinator's own range, over
 * `/grove/stage/1` for the others.
 *
 * A stage that fails or stops answering fails the step; the pipeline then asks for a plan
 * without that peer and replays every running slot's tokens so far on it (no sampling, the last
 * stage's sampler continuing from the RNG state of the last pick), then re-runs the step: the
 * scheduler sees one slow step and the text goes on with nothing repeated or missing. Only when
 * no plan can be made does the step throw, which ends its requests with `unavailable`.
 */
import type { BatchEngine, BatchRow, SampledToken, SamplerOptions } from "../inference/mod.ts";
import type { Logger } from "../protocol/mod.ts";
import { ServiceError } from "./service.ts";
import { StageFailedError } from "./stage-link.ts";
import type { StageCall, StagePick, StageStepResult, StageStepRow } from "./stage-messages.ts";

export type { StageCall };

export interface PipelinePlan {
  id: string;
  stages: StageCall[];
}

export interface PipelineInit {
  vocabSize: number;
  ctxSize: number;
  maxSlots?: number; // default 8
  maxRows?: number; // default 512
  /**
   * A plan over the live candidates minus `exclude`, its stages connected and ready; throws a
   * ServiceError (`unavailable`) when none can be made.
   */
  plan(exclude: ReadonlySet<string>): Promise<PipelinePlan>;
  /**
   * Whether `planId` is no longer the plan this node computes (a candidate joined or left).
   * The pipeline moves to a new plan when no request runs on the old one: a re-plan never drops
   * a stream in flight.
   */
  stale?(planId: string): boolean;
  /** Re-plans one failed step may try before giving up (default 3). */
  maxReplans?: number;
  log?: Logger;
}

interface SlotState {
  sampler: SamplerOptions;
  /** Every token fed so far, prompt first: what a replay feeds again. */
  fed: number[];
  rng?: number[];
  /** Its session id on the current plan; a new one for each plan. */
  session: string;
  /** Whether the current plan's last stage has its sampler yet. */
  opened: boolean;
}

export interface PipelineBatch extends BatchEngine<SampledToken | undefined> {
  /** The plan now in use, if one was made. */
  planId(): string | undefined;
  close(): void;
}

let sessionCounter = 0;
const newSessionId = () => `${crypto.randomUUID().slice(0, 8)}-${++sessionCounter}`;

export function createPipelineBatch(init: PipelineInit): PipelineBatch {
  const maxSlots = init.maxSlots ?? 8;
  const maxRows = init.maxRows ?? 512;
  const maxReplans = init.maxReplans ?? 3;
  const slots: (SlotState | undefined)[] = new Array(maxSlots);
  let plan: PipelinePlan | undefined;
  // Steps run one at a time; the scheduler never overlaps them, but a re-plan must not either.
  let busy = false;

  const stateOf = (slot: number): SlotState => {
    const s = Number.isInteger(slot) ? slots[slot] : undefined;
    if (!s) throw new Error(`pipeline: slot ${slot} is not in use (slots 0..${maxSlots - 1})`);
    return s;
  };

  async function currentPlan(exclude: Set<string>): Promise<PipelinePlan> {
    plan ??= await init.plan(exclude);
    return plan;
  }

  /**
   * One pass of `rows` through every stage of `p`; returns the last stage's picks, one per row.
   * Long rows (a prompt chunk) go in waves of WAVE_TOKENS so the stages work at once: while stage
   * 1 runs wave 0, stage 0 runs wave 1. Each stage still sees each session's tokens in order.
   */
  async function pass(
    p: PipelinePlan,
    rows: readonly { slot: number; tokens: readonly number[]; sample: boolean }[],
  ): Promise<(StagePick | null)[]> {
    const waveTokens = p.stages.length > 1 ? WAVE_TOKENS : Infinity;
    const waves = splitWaves(rows, waveTokens, (slot) => {
      const s = stateOf(slot);
      const open = s.opened ? undefined : { sampler: s.sampler, rngState: s.rng };
      return { session: s.session, open };
    });
    // Per stage, the call of the wave before: a stage takes the waves one after another.
    const stageTail: Promise<unknown>[] = p.stages.map(() => Promise.resolve());
    const wavePicks = waves.map((wave) => {
      let input: Promise<Float32Array | undefined> = Promise.resolve(undefined);
      let picks!: Promise<(StagePick | null)[]>;
      p.stages.forEach((stage, i) => {
        const out = Promise.all([input, stageTail[i]]).then(([hidden]) =>
          callStage(stage, wave.rows, hidden)
        );
        stageTail[i] = out.catch(() => {});
        const last = i === p.stages.length - 1;
        if (last) picks = out.then((o) => picksOf(stage, o, wave.rows.length));
        else input = out.then((o) => hiddenOf(stage, o));
      });
      return picks;
    });
    const answered = await Promise.all(wavePicks);
    for (const r of rows) stateOf(r.slot).opened = true;
    return rows.map((_, i) => {
      const { wave, index } = waves.endOf[i];
      return answered[wave][index];
    });
  }

  /** Feeds every running slot's tokens so far through `p` (new sessions), sampling nothing. */
  async function replay(p: PipelinePlan): Promise<void> {
    for (const s of slots) {
      if (!s) continue;
      s.session = newSessionId();
      s.opened = false;
    }
    for (let slot = 0; slot < maxSlots; slot++) {
      const s = slots[slot];
      if (!s || s.fed.length === 0) continue;
      for (let at = 0; at < s.fed.length; at += maxRows) {
        const tokens = s.fed.slice(at, at + maxRows);
        const picks = await pass(p, [{ slot, tokens, sample: false }]);
        if (picks[0] !== null) throw new Error("a replayed row came back sampled");
      }
    }
  }

  function dropPlan(): void {
    for (const stage of plan?.stages ?? []) stage.destroy();
    plan = undefined;
  }

  async function step(rows: readonly BatchRow[]): Promise<(SampledToken | undefined)[]> {
    if (busy) throw new Error("pipeline: one step at a time");
    if (rows.length === 0) throw new Error("batch: a step needs at least one row");
    const seen = new Set<number>();
    let total = 0;
    for (const r of rows) {
      stateOf(r.slot);
      if (seen.has(r.slot)) throw new Error(`batch: slot ${r.slot} appears twice in one step`);
      if (r.tokens.length === 0) throw new Error(`batch: slot ${r.slot} has no tokens`);
      seen.add(r.slot);
      total += r.tokens.length;
    }
    if (total > maxRows) throw new Error(`batch: ${total} tokens exceed ${maxRows} per step`);
    busy = true;
    const exclude = new Set<string>();
    try {
      for (let attempt = 0;; attempt++) {
        try {
          const p = await currentPlan(exclude);
          if (attempt > 0) await replay(p);
          const picks = await pass(p, rows.map((r) => ({ ...r, sample: r.sample ?? true })));
          rows.forEach((r, i) => {
            const s = stateOf(r.slot);
            s.fed.push(...r.tokens);
            const pick = picks[i];
            if (pick?.rng) s.rng = pick.rng;
          });
          return picks.map((p) => p === null ? undefined : sampledToken(p));
        } catch (err) {
          if (!(err instanceof StageFailedError)) throw err;
          exclude.add(err.peerId);
          init.log?.warn(`stage on peer ${err.peerId.slice(-8)} failed: ${err.message}`);
          dropPlan();
          if (attempt >= maxReplans) {
            throw new ServiceError(
              "unavailable",
              `the split model lost a stage and ${maxReplans} new plans failed too: ${err.message}`,
            );
          }
          init.log?.info("re-planning the split without it and replaying the running requests");
        }
      }
    } finally {
      busy = false;
    }
  }

  return {
    samples: true,
    maxSlots,
    ctxSize: init.ctxSize,
    vocabSize: init.vocabSize,
    maxRows,
    acquire(options) {
      const free = slots.findIndex((s) => s === undefined); // holes count as free
      if (free < 0) return undefined;
      const idle = slots.every((s) => s === undefined);
      if (plan && idle && init.stale?.(plan.id)) {
        init.log?.info(`moving to the split's new plan (was ${plan.id.slice(0, 8)})`);
        dropPlan();
      }
      slots[free] = {
        sampler: options?.sampler ?? {},
        fed: [],
        session: newSessionId(),
        opened: false,
      };
      return free;
    },
    release(slot) {
      const s = stateOf(slot);
      slots[slot] = undefined;
      for (const stage of plan?.stages ?? []) stage.close([s.session]);
    },
    position: (slot) => stateOf(slot).fed.length,
    rewind(slot, position) {
      const s = stateOf(slot);
      if (position !== s.fed.length) {
        throw new Error("a split model's sessions cannot rewind (its caches live on other nodes)");
      }
    },
    step,
    planId: () => plan?.id,
    close: dropPlan,
  };
}

/** Tokens per row a wave carries through a multi-stage plan (a prompt chunk pipelines). */
const WAVE_TOKENS = 16;

interface Waves extends Array<{ rows: StageStepRow[] }> {
  /** Where each input row ended: its last wave and its index there (its pick). */
  endOf: { wave: number; index: number }[];
}

/**
 * Cuts rows into waves of at most `size` tokens per row; a row samples only in its last wave and
 * opens its session (`open`, when given) only in its first.
 */
function splitWaves(
  rows: readonly { slot: number; tokens: readonly number[]; sample: boolean }[],
  size: number,
  sessionOf: (slot: number) => { session: string; open?: StageStepRow["open"] },
): Waves {
  const waves = [] as unknown as Waves;
  waves.endOf = [];
  rows.forEach((r, i) => {
    const { session, open } = sessionOf(r.slot);
    const count = Math.max(1, Math.ceil(r.tokens.length / size));
    for (let w = 0; w < count; w++) {
      waves[w] ??= { rows: [] };
      const lastWave = w === count - 1;
      const row: StageStepRow = {
        session,
        tokens: r.tokens.slice(w * size, (w + 1) * size),
        sample: r.sample && lastWave,
      };
      if (w === 0 && open) row.open = open;
      waves[w].rows.push(row);
      if (lastWave) waves.endOf[i] = { wave: w, index: waves[w].rows.length - 1 };
    }
  });
  return waves;
}

async function callStage(
  stage: StageCall,
  rows: readonly StageStepRow[],
  hidden: Float32Array | undefined,
): Promise<StageStepResult> {
  try {
    return await stage.step(rows, hidden);
  } catch (err) {
    if (err instanceof StageFailedError) throw err;
    throw new StageFailedError(stage.peerId, "unavailable", (err as Error).message);
  }
}

function hiddenOf(stage: StageCall, out: StageStepResult): Float32Array {
  if (!("hidden" in out)) {
    throw new StageFailedError(stage.peerId, "protocol", "a middle stage answered with picks");
  }
  return out.hidden;
}

function picksOf(stage: StageCall, out: StageStepResult, rows: number): (StagePick | null)[] {
  if (!("picks" in out) || out.picks.length !== rows) {
    throw new StageFailedError(
      stage.peerId,
      "protocol",
      "the last stage answered without one pick per row",
    );
  }
  return out.picks;
}

function sampledToken(p: StagePick): SampledToken {
  const t: SampledToken = { id: p.id, logprob: p.logprob };
  if (p.top) t.topLogprobs = p.top.map(([id, logprob]) => ({ id, logprob }));
  return t;
}
