/**
 * One caller's sessions on one loaded stage (docs/protocol.md#grovestage1): what a
 * `/grove/stage/1` stream runs (stage-protocol.ts), and what a coordinator runs in process for a
 * stage it holds itself (`localStageCall`), so both follow the same rules.
 *
 * A session holds one slot of the stage's batch (its KV cache) from its first row, which must
 * carry `open`, until it is closed. A step embeds the rows' tokens (stage 0) or takes the previous
 * stage's hidden states, runs the layers, and on the last stage samples the rows that ask for it
 * with their session's sampler over every token the session was given. A step that needs a slot
 * when none is free is refused whole (`busy`) and changes nothing.
 */
import { createSampler, type StageBatch } from "../inference/mod.ts";
import { type Clock, systemClock } from "./clock.ts";
import { MAX_STAGE_PAYLOAD_BYTES } from "./stage-frames.ts";
import {
  type StageCall,
  type StagePick,
  type StageReady,
  StageRefusal,
  type StageStepResult,
  type StageStepRow,
} from "./stage-messages.ts";
import { errorText } from "./stream-frames.ts";

/** A loaded stage held for one user, who releases it when done (split-node.ts `HeldStage`). */
export interface StageLease {
  batch: StageBatch;
  release(): void;
}

export interface StageRunner {
  ready: StageReady;
  /** `hidden`: Σ tokens × dim values (empty on stage 0), used in place. */
  step(rows: readonly StageStepRow[], hidden: Float32Array): Promise<StageStepResult>;
  close(sessions: readonly string[]): void;
  /** Frees sessions that had no row for more than `idleMs`. */
  sweep(idleMs: number): void;
  /** Frees every session (after the step in flight, if one is). */
  freeAll(): void;
}

type Sampler = ReturnType<typeof createSampler>;

interface Session {
  slot: number;
  /** Last stage only. */
  sampler?: Sampler;
  /** Every token of the session so far: the sampler's penalties look at them. */
  history: number[];
  usedAt: number;
}

export function createStageRunner(batch: StageBatch, clock: Clock): StageRunner {
  const { dim, vocabSize } = batch.config;
  const first = batch.layerStart === 0;
  const last = batch.layerEnd === batch.config.layers;
  const maxRows = Math.min(batch.maxRows, Math.floor(MAX_STAGE_PAYLOAD_BYTES / (dim * 4)));
  const sessions = new Map<string, Session>();
  let stepping = false;
  // Slots are freed only between steps: a running forward still writes their caches.
  let freeAfterStep = false;

  function free(id: string) {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    batch.release(s.slot);
  }

  /** The rows' sessions, opening new ones: all or none, so a refusal leaves no trace. */
  function sessionsOf(rows: readonly StageStepRow[]): Session[] {
    const opened: [string, Session][] = [];
    try {
      const out = rows.map((row) => {
        const known = sessions.get(row.session);
        if (known) return known;
        if (!row.open) {
          throw new StageRefusal(
            "invalid_request",
            `session ${row.session} is not open here (a first row needs "open"; ` +
              `idle sessions are freed after 60 s)`,
          );
        }
        // The sampler first: a bad one must not take a slot.
        const sampler = last ? samplerOf(row) : undefined;
        const slot = batch.acquire();
        if (slot === undefined) {
          throw new StageRefusal("busy", `all ${batch.maxSlots} slots of this stage are taken`);
        }
        const s: Session = { slot, sampler, history: [], usedAt: clock.now() };
        opened.push([row.session, s]);
        return s;
      });
      for (const [id, s] of opened) sessions.set(id, s);
      return out;
    } catch (err) {
      for (const [, s] of opened) batch.release(s.slot);
      throw err;
    }
  }

  function samplerOf(row: StageStepRow): Sampler {
    try {
      const init = { ...row.open!.sampler, rngState: row.open!.rngState };
      return createSampler(init);
    } catch (err) {
      throw new StageRefusal("invalid_request", `session ${row.session}: ${errorText(err)}`);
    }
  }

  function check(rows: readonly StageStepRow[], hidden: Float32Array): void {
    let count = 0;
    for (const row of rows) {
      count += row.tokens.length;
      const bad = row.tokens.find((t) => t >= vocabSize);
      if (bad !== undefined) {
        throw new StageRefusal("invalid_request", `token ${bad} is outside the vocabulary`);
      }
    }
    if (rows.length === 0 || count > maxRows) {
      throw new StageRefusal(
        "invalid_request",
        `a step of ${count} rows; this stage takes 1–${maxRows}`,
      );
    }
    const expected = first ? 0 : count * dim;
    if (hidden.length !== expected) {
      throw new StageRefusal(
        "invalid_request",
        `a step of ${count} rows carries ${hidden.length} f32 values; expected ${expected}`,
      );
    }
  }

  /** Embeds (stage 0), runs the layers, and (last stage) the logits of the sampled rows. */
  function compute(rows: readonly StageStepRow[], active: Session[], input: Float32Array) {
    return exclusive(batch, async () => {
      const hidden = first ? await batch.embed(rows.flatMap((r) => r.tokens)) : input;
      const slots = rows.map((r, i) => ({ slot: active[i].slot, count: r.tokens.length }));
      await batch.forward(slots, hidden);
      if (!last) return { hidden, logits: [] };
      const at: number[] = [];
      let end = 0;
      for (const r of rows) {
        end += r.tokens.length;
        if (r.sample) at.push(end - 1);
      }
      return { hidden, logits: at.length > 0 ? await batch.logits(hidden, at) : [] };
    });
  }

  return {
    ready: { range: [batch.layerStart, batch.layerEnd], dim, maxRows, maxSlots: batch.maxSlots },
    async step(rows, input) {
      check(rows, input);
      const active = sessionsOf(rows);
      rows.forEach((row, i) => {
        if (row.tokens.length > batch.ctxSize - batch.position(active[i].slot)) {
          throw new StageRefusal(
            "invalid_request",
            `session ${row.session} would pass the ${batch.ctxSize}-token context`,
          );
        }
      });
      stepping = true;
      try {
        const { hidden, logits } = await compute(rows, active, input);
        const now = clock.now();
        rows.forEach((row, i) => {
          active[i].history.push(...row.tokens);
          active[i].usedAt = now;
        });
        if (!last) return { hidden };
        let k = 0;
        const picks = rows.map((row, i): StagePick | null => {
          if (!row.sample) return null;
          const sampler = active[i].sampler!;
          const token = sampler.sample(logits[k++], active[i].history);
          const pick: StagePick = { session: row.session, id: token.id, logprob: token.logprob };
          if (token.topLogprobs) pick.top = token.topLogprobs.map((t) => [t.id, t.logprob]);
          pick.rng = sampler.rngState();
          return pick;
        });
        return { picks };
      } finally {
        stepping = false;
        if (freeAfterStep) freeAll();
      }
    },
    close(ids) {
      for (const id of ids) free(id);
    },
    sweep(idleMs) {
      if (stepping) return;
      const now = clock.now();
      for (const [id, s] of sessions) if (now - s.usedAt > idleMs) free(id);
    },
    freeAll,
  };

  function freeAll() {
    freeAfterStep = stepping;
    if (!stepping) { for (const id of [...sessions.keys()]) free(id); }
  }
}

/**
 * A stage this node holds, stepped in process by its own coordinator: the same sessions and
 * sampling as over `/grove/stage/1`, without the copies. destroy() frees the sessions and
 * releases the lease.
 */
export function localStageCall(
  lease: StageLease,
  peerId: string,
  clock: Clock = systemClock,
): StageCall {
  const runner = createStageRunner(lease.batch, clock);
  let destroyed = false;
  return {
    peerId,
    range: runner.ready.range,
    step(rows, hidden) {
      if (destroyed) return Promise.reject(new Error("this stage call was destroyed"));
      return runner.step(rows, hidden ?? new Float32Array(0));
    },
    close: (sessions) => runner.close(sessions),
    destroy() {
      if (destroyed) return;
      destroyed = true;
      runner.freeAll();
      lease.release();
    },
  };
}

/** Several callers may share one stage: its batch runs one call at a time. */
const running = new WeakMap<StageBatch, Promise<unknown>>();

function exclusive<T>(batch: StageBatch, fn: () => Promise<T>): Promise<T> {
  const before = running.get(batch) ?? Promise.resolve();
  const mine = before.then(fn, fn);
  running.set(batch, mine.catch(() => {}));
  return mine;
}
