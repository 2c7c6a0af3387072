/**
 * The scheduler's stepping loop. While any sequence can move, one batched step feeds a decode
 * token for every running sequence plus prompt chunks of those still prefilling (up to
 * `prefillChunk` tokens and the engine's `maxRows`), so the weights are read once for all of
 * them. Between steps sequences leave (aborted, or their reader gone) and join from the wait
 * queue. `kick()` starts the loop, or has a running one look again.
 *
 * Pull, not push: a sequence sits a step out while its reader has `MAX_AHEAD` tokens it has not
 * taken, so a slow client holds only its own slot.
 */
import type { AheadOutput, BatchEngine, BatchRow, DecodeRow, StepOutput } from "./batch.ts";
import { acceptPick, acceptToken, type Ending, type Sequence } from "./scheduler-sequence.ts";
import { argmax, penalizes } from "./sampler.ts";
import { rngFromState } from "./rng.ts";
import type { SchedulerSlots, WaitLine } from "./scheduler-slots.ts";
import type { Tokenizer } from "./tokenizer/mod.ts";

export const MAX_AHEAD = 4;
const BREATHE_EVERY_MS = 15;
/**
 * The longest a step should take. A CPU step holds the event loop, and between steps a serving
 * node's liveness beats must get out (the mesh declares a peer silent for 3 s dead), so a prompt
 * chunk is cut to what fits: on a 1.1B model prefilling at ~22 tokens/s that is ~20 tokens, not 64.
 */
export const MAX_STEP_MS = 1000;
/** Prompt tokens of the first step, before the loop knows what a token costs on this engine. */
const FIRST_CHUNK = 16;
/**
 * With an engine that can run decode steps ahead (BatchEngine.decodeAhead: WebGPU, where each
 * readback waits 10 ms more than the work), sequences whose picks the engine can make itself (the
 * argmax, or a draw at settings it samples with) take rounds of steps this long, so that fixed
 * wait is a small share of each: one 10 ms wait per ~60 ms of decode. A round's tokens reach
 * their readers together.
 */
export const AHEAD_ROUND_MS = 60;
/** The most steps in one round (also bounded by MAX_STEP_MS, the context and max_tokens). */
export const MAX_AHEAD_STEPS = 32;

export interface StepLoopInit {
  /** Prompt tokens per step beside the decode rows. */
  prefillChunk: number;
  /** Default MAX_STEP_MS. */
  maxStepMs?: number;
  /** The clock steps are timed with (tests pass a fake one). */
  now?: () => number;
}

export interface StepLoopComponents {
  batch:
    & Pick<BatchEngine<StepOutput>, "step" | "maxRows">
    & Partial<
      Pick<
        BatchEngine<StepOutput>,
        "decodeAhead" | "sampleAheadTopK" | "penaltyWindowAhead" | "position" | "rewind" | "ctxSize"
      >
    >;
  tokenizer: Pick<Tokenizer, "isEndOfGeneration">;
  /** Where sequences wait for a slot. */
  queue: WaitLine<Sequence>;
  slots: Pick<SchedulerSlots<Sequence>, "running" | "admit">;
  /** Ends a sequence: frees its slot, sets its result and wakes its reader. */
  finish(seq: Sequence, end: Ending): void;
}

export interface StepLoop {
  /** Something changed (a request came, a reader took a token, an abort): step while any can. */
  kick(): void;
  /** One batched step now; false when no sequence could move (the loop calls it; tests too). */
  step(): Promise<boolean>;
}

function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether the host shapes the sequence's picks beyond its sampler's chain: a bias or grammar. */
function hostShapesPicks(seq: Sequence): boolean {
  return seq.sampler.options.logitBias !== undefined || seq.constraint !== undefined;
}

/** Whether the sequence's picks depend on its logits alone: no penalty, bias or grammar. */
function picksFromLogits(seq: Sequence): boolean {
  return !hostShapesPicks(seq) && !penalizes(seq.sampler.options);
}

/** Whether the sequence's sampler always takes the argmax of the logits it is given. */
function picksArgmax(seq: Sequence): boolean {
  return seq.sampler.options.temperature <= 0 && picksFromLogits(seq);
}

/**
 * A sequence that may pick otherwise (it samples, or has penalties or a bias) joins rounds once
 * this share of its picks, smoothed, were the argmax (a low temperature), over at least
 * AGREE_AFTER picks: a round's steps past its first other pick are work for nothing.
 */
export const AHEAD_AGREEMENT = 0.9;
const AGREE_AFTER = 8;

export function createStepLoop(init: StepLoopInit, c: StepLoopComponents): StepLoop {
  const { batch, slots, finish } = c;
  let pumping = false, dirty = false;
  // Across pump runs: consumers restart the pump in microtasks, so only this clock
  // makes sure timers and sockets (a client's abort) get a turn.
  let lastBreath = performance.now();
  const now = init.now ?? (() => performance.now());
  const maxStepMs = init.maxStepMs ?? MAX_STEP_MS;
  /** What one row token has cost a step, smoothed; undefined before the first step. */
  let msPerToken: number | undefined;
  /** What a decode row has cost a step of decode rows only (rounds included), smoothed. */
  let msPerDecodeRow: number | undefined;
  const smooth = (old: number | undefined, cost: number) =>
    old === undefined ? cost : 0.7 * old + 0.3 * cost;
  /** How often each sequence that may pick otherwise picked the argmax, smoothed. */
  const agreement = new WeakMap<Sequence, { share: number; seen: number }>();

  function agreed(seq: Sequence, pick: number, fed: number) {
    const a = agreement.get(seq), hit = pick === fed ? 1 : 0;
    if (!a) return void agreement.set(seq, { share: hit, seen: 1 });
    a.share = 0.9 * a.share + 0.1 * hit;
    a.seen++;
  }

  /**
   * Whether the engine picks this sequence's tokens itself in a round, as its sampler would: its
   * penalties (BatchEngine.penaltyWindowAhead) and its draw (sampleAheadTopK) on the device.
   */
  function samplesAhead(seq: Sequence): boolean {
    const o = seq.sampler.options;
    if (hostShapesPicks(seq)) return false;
    const window = batch.penaltyWindowAhead ?? 0;
    if (penalizes(o) && !(o.repeatLastN >= 1 && o.repeatLastN <= window)) return false;
    // greedy: the engine's own argmax, unless penalties move it
    if (o.temperature <= 0) return penalizes(o);
    return o.topK >= 1 && o.topK <= (batch.sampleAheadTopK ?? 0);
  }

  /**
   * The token an engine that runs ahead would have fed itself after `out`: its argmax, counted
   * for a sequence that may pick otherwise and that the engine cannot sample (goesAhead).
   */
  function wouldFeed(seq: Sequence, out: StepOutput): number | undefined {
    if (!batch.decodeAhead || !(out instanceof Float32Array)) return undefined;
    return picksArgmax(seq) || samplesAhead(seq) || seq.constraint ? undefined : argmax(out);
  }

  /** Whether its picks are the engine's own (the argmax, or its draw) so surely that a round pays. */
  function goesAhead(seq: Sequence): boolean {
    if (picksArgmax(seq) || samplesAhead(seq)) return true;
    if (seq.constraint) return false;
    const a = agreement.get(seq);
    return a !== undefined && a.seen >= AGREE_AFTER && a.share >= AHEAD_AGREEMENT;
  }

  /** Prompt tokens a step with `decodeRows` decode rows can take within maxStepMs. */
  function affordable(decodeRows: number): number {
    if (msPerToken === undefined) return FIRST_CHUNK;
    if (msPerToken <= 0) return Infinity;
    return Math.max(1, Math.floor(maxStepMs / msPerToken) - decodeRows);
  }

  /** Logits are sampled by the sequence's own sampler; an engine's pick is taken as it is. */
  function accept(seq: Sequence, out: StepOutput) {
    const end = taken(seq, out);
    if (end) finish(seq, end);
  }

  /** `out` taken as the sequence's next token: why it ends, if it does. */
  function taken(seq: Sequence, out: StepOutput): Ending | undefined {
    if (out === undefined) {
      seq.error = new Error(`the engine gave no token for slot ${seq.slot}`);
      return { reason: "cancelled" };
    }
    try {
      return out instanceof Float32Array
        ? acceptToken(seq, out, c.tokenizer)
        : acceptPick(seq, out, c.tokenizer);
    } catch (err) {
      // A grammar with no way on (GrammarError): this sequence ends, the others go on.
      seq.error = err;
      return { reason: "cancelled" };
    }
  }

  /** A step the engine failed ends the sequences in it with its error; the others go on. */
  function failed(stepped: readonly Sequence[], err: unknown): true {
    for (const seq of stepped) {
      seq.error = err;
      finish(seq, { reason: "cancelled" });
    }
    return true;
  }

  /**
   * Steps for a round ahead (1: a plain step): only when every running sequence decodes this
   * step, none waits for a slot, and each picks what the engine would feed it (the argmax when
   * greedy or nearly always so far, or the engine's draw at its settings: goesAhead), so the
   * engine's own picks are the ones the samplers make.
   */
  function aheadSteps(rows: readonly BatchRow[], stepped: readonly Sequence[]): number {
    const { decodeAhead, position, rewind, ctxSize } = batch;
    if (!decodeAhead || !position || !rewind || !ctxSize || msPerDecodeRow === undefined) return 1;
    if (c.queue.length > 0 || stepped.length !== slots.running.length) return 1;
    if (!rows.every((r, i) => r.tokens.length === 1 && stepped[i].next !== undefined)) return 1;
    if (!stepped.every(goesAhead)) return 1;
    const stepMs = msPerDecodeRow * rows.length;
    let steps = Math.min(
      MAX_AHEAD_STEPS,
      Math.ceil(AHEAD_ROUND_MS / stepMs),
      Math.max(1, Math.floor(maxStepMs / stepMs)),
      Math.max(...stepped.map((seq) => seq.maxTokens - seq.completion)),
    );
    for (const seq of stepped) steps = Math.min(steps, ctxSize - position(seq.slot));
    return Math.max(1, steps);
  }

  /**
   * A round of `steps` decode steps in one readback (BatchEngine.decodeAhead): each sequence
   * takes its picks in order while they are the tokens the engine fed itself; at the first that
   * differs, or where it ends, its slot is rewound to the tokens it really read.
   */
  async function runAhead(stepped: Sequence[], steps: number): Promise<boolean> {
    const rows = stepped.map((seq) => aheadRow(seq, steps));
    const starts = stepped.map((seq) => batch.position!(seq.slot));
    let out: AheadOutput;
    const started = now();
    try {
      out = await batch.decodeAhead!(rows, steps);
      msPerDecodeRow = smooth(msPerDecodeRow, (now() - started) / (steps * rows.length));
    } catch (err) {
      return failed(stepped, err);
    }
    stepped.forEach((seq, i) => {
      seq.next = undefined;
      for (let j = 0; j < steps; j++) {
        // logits[j] follow the row's token and the j picks fed after it: j + 1 tokens read
        const end = taken(seq, out.logits[j][i]);
        const last = j + 1 === steps;
        if (end === undefined && !last) {
          agreed(seq, seq.next!, out.fed[j][i]);
          if (seq.next === out.fed[j][i]) continue;
        }
        if (!last) batch.rewind!(seq.slot, starts[i] + j + 1);
        if (end) finish(seq, end);
        return;
      }
    });
    return true;
  }

  /**
   * A sequence's row of a round: where the engine samples it, the settings and the draws its
   * sampler would make next, read from a copy of its generator (the sampler itself draws again
   * as it takes each pick, so where a pick differs the draws after it are simply not used).
   */
  function aheadRow(seq: Sequence, steps: number): DecodeRow {
    const row = { slot: seq.slot, token: seq.next! };
    if (!samplesAhead(seq)) return row;
    const o = seq.sampler.options;
    const { temperature, topK, topP, minP } = o;
    const rng = rngFromState(seq.sampler.rngState());
    const draws = temperature > 0 ? Array.from({ length: steps - 1 }, () => rng.nextFloat()) : [];
    const penalties = penalizes(o)
      ? {
        repeat: o.repeatPenalty,
        frequency: o.frequencyPenalty,
        presence: o.presencePenalty,
        window: o.repeatLastN,
        recent: seq.history.slice(-o.repeatLastN), // what the sampler's next pick looks at
      }
      : undefined;
    return { ...row, sampling: { temperature, topK, topP, minP, draws, penalties } };
  }

  async function step(): Promise<boolean> {
    for (const seq of [...slots.running]) {
      if (seq.gone || seq.signal?.aborted) finish(seq, { reason: "cancelled" });
    }
    for (const seq of slots.admit(c.queue)) {
      seq.admittedAt = performance.now();
      seq.fed = seq.cached; // a cached prefix of its requester holds these already
    }
    const rows: BatchRow[] = [], stepped: Sequence[] = [];
    for (const seq of slots.running) {
      if (seq.next !== undefined && seq.events.length < MAX_AHEAD) {
        rows.push({ slot: seq.slot, tokens: [seq.next], sample: true });
        stepped.push(seq);
      }
    }
    let budget = Math.min(init.prefillChunk, batch.maxRows - rows.length, affordable(rows.length));
    for (const seq of slots.running) {
      if (seq.fed === seq.prompt.length || budget <= 0) continue;
      const chunk = seq.prompt.slice(seq.fed, seq.fed + budget);
      rows.push({
        slot: seq.slot,
        tokens: chunk,
        sample: seq.fed + chunk.length === seq.prompt.length,
      });
      stepped.push(seq);
      budget -= chunk.length;
    }
    if (rows.length === 0) return false;
    const ahead = aheadSteps(rows, stepped);
    if (ahead > 1) return await runAhead(stepped, ahead);
    let outs: StepOutput[];
    const started = now();
    try {
      outs = await batch.step(rows);
      const tokens = rows.reduce((n, r) => n + r.tokens.length, 0);
      const cost = (now() - started) / tokens;
      msPerToken = smooth(msPerToken, cost);
      if (tokens === rows.length && stepped.every((seq) => seq.next !== undefined)) {
        msPerDecodeRow = smooth(msPerDecodeRow, cost);
      }
    } catch (err) {
      return failed(stepped, err);
    }
    stepped.forEach((seq, i) => {
      if (seq.next !== undefined) {
        seq.next = undefined;
        const fed = wouldFeed(seq, outs[i]);
        accept(seq, outs[i]);
        if (fed !== undefined) agreed(seq, seq.history.at(-1)!, fed);
        return;
      }
      seq.fed += rows[i].tokens.length;
      if (seq.fed < seq.prompt.length) return;
      seq.prefilledAt = performance.now();
      accept(seq, outs[i]);
    });
    return true;
  }

  async function pump() {
    try {
      while (dirty) {
        dirty = false;
        do {
          if (performance.now() - lastBreath > BREATHE_EVERY_MS) {
            await breathe(); // timers and sockets (a client's disconnect) get their turn
            lastBreath = performance.now();
          }
        } while (await step());
      }
    } finally {
      pumping = false;
    }
  }

  return {
    kick() {
      dirty = true;
      if (pumping) return;
      pumping = true;
      void pump();
    },
    step,
  };
}
