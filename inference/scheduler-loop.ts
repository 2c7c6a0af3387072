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
import type { BatchEngine, BatchRow, StepOutput } from "./batch.ts";
import { acceptPick, acceptToken, type Ending, type Sequence } from "./scheduler-sequence.ts";
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

export interface StepLoopInit {
  /** Prompt tokens per step beside the decode rows. */
  prefillChunk: number;
  /** Default MAX_STEP_MS. */
  maxStepMs?: number;
  /** The clock steps are timed with (tests pass a fake one). */
  now?: () => number;
}

export interface StepLoopComponents {
  batch: Pick<BatchEngine<StepOutput>, "step" | "maxRows">;
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

  /** Prompt tokens a step with `decodeRows` decode rows can take within maxStepMs. */
  function affordable(decodeRows: number): number {
    if (msPerToken === undefined) return FIRST_CHUNK;
    if (msPerToken <= 0) return Infinity;
    return Math.max(1, Math.floor(maxStepMs / msPerToken) - decodeRows);
  }

  /** Logits are sampled by the sequence's own sampler; an engine's pick is taken as it is. */
  function accept(seq: Sequence, out: StepOutput) {
    if (out === undefined) {
      seq.error = new Error(`the engine gave no token for slot ${seq.slot}`);
      return finish(seq, { reason: "cancelled" });
    }
    let end: Ending | undefined;
    try {
      end = out instanceof Float32Array
        ? acceptToken(seq, out, c.tokenizer)
        : acceptPick(seq, out, c.tokenizer);
    } catch (err) {
      // A grammar with no way on (GrammarError): this sequence ends, the others go on.
      seq.error = err;
      end = { reason: "cancelled" };
    }
    if (end) finish(seq, end);
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
    let outs: StepOutput[];
    const started = now();
    try {
      outs = await batch.step(rows);
      const tokens = rows.reduce((n, r) => n + r.tokens.length, 0);
      const cost = (now() - started) / tokens;
      msPerToken = msPerToken === undefined ? cost : 0.7 * msPerToken + 0.3 * cost;
    } catch (err) {
      for (const seq of stepped) {
        seq.error = err;
        finish(seq, { reason: "cancelled" });
      }
      return true;
    }
    stepped.forEach((seq, i) => {
      if (seq.next !== undefined) {
        seq.next = undefined;
        return accept(seq, outs[i]);
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
