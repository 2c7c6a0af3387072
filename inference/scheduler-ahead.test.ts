// Rounds of decode steps in one readback (BatchEngine.decodeAhead) against a fake engine whose
// "model" is a rule on the tokens a slot has read: the scheduler must answer exactly as with plain
// steps, leave every slot holding the tokens its sequence really read, and run ahead only when
// every sequence takes the argmax or a draw the engine makes as its sampler would.
import assert from "node:assert/strict";
import type { AheadOutput, AheadSampling, BatchRow, DecodeRow } from "./batch.ts";
import { argmax, candidateSet, penalize } from "./sampler.ts";
import { createStepLoop, MAX_AHEAD_STEPS } from "./scheduler-loop.ts";
import { createSequence, type Sequence } from "./scheduler-sequence.ts";
import type { ScheduleOptions } from "./scheduler-sequence.ts";
import { createSchedulerSlots } from "./scheduler-slots.ts";

const VOCAB = 8;
const EOS = 0;
const tokenizer = {
  createDecoder: () => ({ push: (id: number) => String.fromCharCode(96 + id), flush: () => "" }),
  isEndOfGeneration: (id: number) => id === EOS,
};

/** The fake model's next token after `read`; EOS once a slot has read 40 tokens. */
function nextAfter(read: readonly number[]): number {
  if (read.length === 40) return EOS;
  return (read.reduce((a, b) => a + b, 0) + read.length) % (VOCAB - 1) + 1;
}

function logitsAfter(read: readonly number[], eosLogit = 0): Float32Array {
  const out = new Float32Array(VOCAB);
  out[EOS] = eosLogit;
  out[nextAfter(read)] = 5;
  return out;
}

/**
 * A pick as sampler.ts makes it, from the penalties over the row's recent tokens, the candidates
 * its chain keeps and the row's next draw: what an engine that samples ahead does on its device.
 */
function pickAhead(
  logits: Float32Array,
  s: AheadSampling,
  recent: number[],
  next: () => number,
): number {
  const p = s.penalties;
  const x = p
    ? penalize(logits, recent, {
      repeatPenalty: p.repeat,
      frequencyPenalty: p.frequency,
      presencePenalty: p.presence,
      repeatLastN: p.window,
    })
    : logits;
  if (s.temperature <= 0) return argmax(x);
  const { temperature, topK, topP, minP } = s;
  const ids = candidateSet(x, [], { temperature, topK, topP, minP });
  if (ids.length === 1) return ids[0]; // a sure pick takes no draw
  const weights = ids.map((id) => Math.exp((x[id] - x[ids[0]]) / s.temperature));
  let u = next() * weights.reduce((a, b) => a + b);
  for (const [k, w] of weights.entries()) if ((u -= w) < 0) return ids[k];
  return ids.at(-1)!;
}

interface FakeInit {
  ahead: boolean;
  /** decodeAhead also draws for rows that sample, with a top-k up to this. */
  sampleTopK?: number;
  /** ... and applies penalties over up to this many recent tokens. */
  penaltyWindow?: number;
  /** decodeAhead feeds this token at round step `at` instead of its argmax (a wrong guess). */
  wrongAt?: number;
  stepMs?: number;
  ctxSize?: number;
  /** EOS's logit where the model does not say it (default 0, as every other token's). */
  eosLogit?: number;
}

function fakeEngine(init: FakeInit) {
  let clock = 0;
  const read: number[][] = [];
  const rounds: number[] = [];
  const roundSlots: number[][] = [];
  const rewinds: number[] = []; // the slots rewound
  const taken = new Set<number>();
  const batch = {
    maxSlots: 4,
    maxRows: 512,
    ctxSize: init.ctxSize ?? 48,
    now: () => clock,
    acquire() {
      for (let i = 0; i < 4; i++) {
        if (!taken.has(i)) return taken.add(i), read[i] = [], i;
      }
      return undefined;
    },
    release: (slot: number) => void taken.delete(slot),
    position: (slot: number) => read[slot].length,
    rewind(slot: number, position: number) {
      assert.ok(position <= read[slot].length, `rewind forward: ${position}`);
      rewinds.push(slot);
      read[slot].length = position;
    },
    step(rows: readonly BatchRow[]) {
      clock += (init.stepMs ?? 20) * rows.length;
      return Promise.resolve(rows.map((r) => {
        read[r.slot].push(...r.tokens);
        return logitsAfter(read[r.slot], init.eosLogit);
      }));
    },
    sampleAheadTopK: init.sampleTopK,
    penaltyWindowAhead: init.penaltyWindow,
    decodeAhead: init.ahead
      ? (rows: readonly DecodeRow[], steps: number): Promise<AheadOutput> => {
        rounds.push(steps);
        const used = rows.map(() => 0);
        const recent = rows.map((r) => [...r.sampling?.penalties?.recent ?? []]);
        roundSlots.push(rows.map((r) => r.slot));
        for (const r of rows) {
          assert.ok(read[r.slot].length + steps <= batch.ctxSize, "a round past the context");
        }
        clock += 10 + 2 * steps * rows.length; // one readback's wait, and the steps' work
        const out: AheadOutput = { logits: [], fed: [] };
        let feed = rows.map((r) => r.token);
        for (let j = 0; j < steps; j++) {
          out.logits.push(rows.map((r, i) => {
            read[r.slot].push(feed[i]);
            return logitsAfter(read[r.slot], init.eosLogit);
          }));
          if (j + 1 < steps) {
            feed = rows.map((r, i) => {
              const s = r.sampling;
              if (s && s.temperature > 0) assert.ok(s.topK <= init.sampleTopK!, `top-k ${s.topK}`);
              if (s?.penalties) assert.ok(s.penalties.window <= init.penaltyWindow!);
              const pick = s
                ? pickAhead(out.logits[j][i], s, recent[i], () => s.draws[used[i]++])
                : nextAfter(read[r.slot]);
              recent[i].push(pick);
              return j === init.wrongAt ? pick % (VOCAB - 1) + 1 : pick;
            });
            out.fed.push(feed);
          }
        }
        return Promise.resolve(out);
      }
      : undefined,
  };
  return { batch, read, rounds, roundSlots, rewinds };
}

interface Run {
  texts: string[];
  reasons: string[];
  rounds: number[];
  /** The slots in each round. */
  roundSlots: number[][];
  rewinds: number[];
}

/** Runs the requests to their ends; at each end the slot must hold what the sequence read. */
async function runAll(
  init: FakeInit,
  requests: { prompt: number[]; maxTokens: number; options?: ScheduleOptions }[],
): Promise<Run> {
  const { batch, read, rounds, roundSlots, rewinds } = fakeEngine(init);
  const slots = createSchedulerSlots<Sequence>(batch);
  const queue: Sequence[] = [];
  const reasons = new Map<Sequence, string>();
  const loop = createStepLoop({ prefillChunk: 64, now: batch.now }, {
    batch,
    tokenizer,
    queue,
    slots,
    finish(seq, end) {
      // Every token but the last pick was read: the slot holds exactly those.
      assert.deepEqual(read[seq.slot], seq.history.slice(0, -1), "the slot's tokens at its end");
      slots.release(seq);
      reasons.set(seq, end.reason);
    },
  });
  const seqs = requests.map((r) => {
    const seq = createSequence(r.prompt, r.options ?? { temperature: 0 }, r.maxTokens, tokenizer);
    queue.push(seq);
    return seq;
  });
  const texts = seqs.map(() => "");
  for (let i = 0; i < 500 && reasons.size < seqs.length; i++) {
    await loop.step();
    seqs.forEach((seq, k) => { // the readers keep up
      texts[k] += seq.events.map((e) => e.text).join("");
      seq.events.length = 0;
    });
    for (const seq of seqs) {
      // Once its prompt is in, a running slot holds all it read: every token but the last pick.
      if (!reasons.has(seq) && seq.slot >= 0 && seq.completion > 0) {
        assert.deepEqual(read[seq.slot], seq.history.slice(0, -1), "a running slot's tokens");
      }
    }
  }
  return {
    texts,
    reasons: seqs.map((seq) => reasons.get(seq)!),
    rounds,
    roundSlots,
    rewinds,
  };
}

const REQUESTS = [
  { prompt: [1, 2, 3], maxTokens: 25 }, // ends by length, mid-round
  { prompt: [4, 5], maxTokens: 100 }, // reads 40 tokens, then the model says EOS
  { prompt: [6], maxTokens: 7 },
];

Deno.test("decode ahead: greedy sequences answer as with plain steps, in rounds", async () => {
  const plain = await runAll({ ahead: false }, REQUESTS);
  const ahead = await runAll({ ahead: true }, REQUESTS);
  assert.deepEqual(ahead.texts, plain.texts);
  assert.deepEqual(ahead.reasons, ["length", "stop", "length"]);
  assert.deepEqual(plain.reasons, ahead.reasons);
  assert.ok(ahead.rounds.length > 0, "the engine ran ahead");
  assert.ok(ahead.rounds.every((k) => k > 1 && k <= MAX_AHEAD_STEPS), `${ahead.rounds}`);
  // Each round is sized for ~60 ms of the engine's time, learnt from the steps before it.
  assert.ok(Math.max(...ahead.rounds) >= 4, `${ahead.rounds}`);
});

Deno.test("decode ahead: where the engine fed another token than the pick, the slot is rewound", async () => {
  const plain = await runAll({ ahead: false }, REQUESTS);
  for (const wrongAt of [0, 1, 2]) {
    const ahead = await runAll({ ahead: true, wrongAt }, REQUESTS);
    assert.deepEqual(ahead.texts, plain.texts, `wrong guess at round step ${wrongAt}`);
    assert.ok(ahead.rounds.length > 0);
  }
});

Deno.test("decode ahead: not while a sequence's picks are seldom the argmax, nor while one waits", async () => {
  for (
    const options of [
      // untruncated at this heat, the fake model's top token is ~40 % of the picks
      { temperature: 3, topK: 0, topP: 1, minP: 0, seed: 1 },
      { temperature: 0, logitBias: { "3": 10 } }, // always 3, seldom the model's argmax
    ] satisfies ScheduleOptions[]
  ) {
    const requests = [
      { prompt: [1, 2, 3], maxTokens: 30 },
      { prompt: [4], maxTokens: 30, options },
    ];
    const run = await runAll({ ahead: true }, requests);
    // Slot 1's sequence never goes ahead (the other may, alone, once slot 1's has ended).
    assert.ok(run.roundSlots.every((s) => !s.includes(1)), JSON.stringify(options));
    assert.deepEqual(run.texts, (await runAll({ ahead: false }, requests)).texts);
  }
  // Five requests on four slots: the fifth waits, so the others step one token at a time until
  // one ends and it is admitted.
  const five = Array.from({ length: 5 }, (_, i) => ({ prompt: [i + 1], maxTokens: 8 + i }));
  const plain = await runAll({ ahead: false }, five);
  const ahead = await runAll({ ahead: true }, five);
  assert.deepEqual(ahead.texts, plain.texts);
  assert.ok(ahead.rounds.length > 0, "after the fifth got its slot, rounds");
});

Deno.test("decode ahead: a sequence that samples joins rounds once its picks agree with the argmax", async () => {
  for (
    const options of [
      { temperature: 0.7, seed: 5 }, // the top token nearly always at this heat
      { temperature: 0, repeatPenalty: 1.2 }, // the penalty never moves this model's argmax
      { temperature: 0, presencePenalty: 0.5 },
    ] satisfies ScheduleOptions[]
  ) {
    const requests = [
      { prompt: [1, 2, 3], maxTokens: 30 },
      { prompt: [4], maxTokens: 30, options },
    ];
    const plain = await runAll({ ahead: false }, requests);
    const ahead = await runAll({ ahead: true }, requests);
    assert.deepEqual(ahead.texts, plain.texts, JSON.stringify(options));
    // The first rounds wait for 8 of its picks to agree.
    assert.ok(ahead.roundSlots.some((s) => s.includes(1)), JSON.stringify(options));
    assert.ok(ahead.rounds.reduce((a, b) => a + b) <= 30 - 8, `${ahead.rounds}`);
  }
});

Deno.test("decode ahead: rounds stop at the longest max_tokens left, and at the context", async () => {
  const prompt = Array.from({ length: 30 }, () => 1);
  const short = [{ prompt, maxTokens: 8 }];
  const run = await runAll({ ahead: true, stepMs: 2 }, short);
  assert.deepEqual(run.texts, (await runAll({ ahead: false, stepMs: 2 }, short)).texts);
  assert.deepEqual(run.reasons, ["length"]);
  assert.equal(run.texts[0].length, 8);
  // After the first token (a plain step, which measures one), at most 7 remain.
  assert.ok(run.rounds.length > 0 && run.rounds.every((k) => k <= 7), `${run.rounds}`);
  // A context of 36: 6 positions after the prompt, whatever max_tokens says (the fake engine
  // fails a round past it).
  const long = [{ prompt, maxTokens: 20 }];
  const tight = await runAll({ ahead: true, stepMs: 2, ctxSize: 36 }, long);
  assert.ok(tight.rounds.length > 0 && tight.rounds.every((k) => k <= 6), `${tight.rounds}`);
});

Deno.test("decode ahead: a sequence the engine can sample takes rounds from the start, as with plain steps", async () => {
  // At this heat the fake model's top token is ~60 % of the picks: too seldom for argmax rounds.
  const sampled = { temperature: 3, topK: 4, topP: 1, minP: 0, seed: 3 };
  const requests = [
    { prompt: [1, 2, 3], maxTokens: 30 },
    { prompt: [4], maxTokens: 30, options: sampled },
    { prompt: [5], maxTokens: 30, options: { ...sampled, topP: 0.8, minP: 0.2, seed: 4 } },
  ];
  const plain = await runAll({ ahead: false }, requests);
  const ahead = await runAll({ ahead: true, sampleTopK: 4, stepMs: 2 }, requests);
  assert.deepEqual(ahead.texts, plain.texts);
  assert.ok(ahead.texts[1] !== plain.texts[0], "the sampled answer is not the greedy one");
  // Its first round comes once a plain step has timed a decode row, not after 8 agreeing picks.
  const first = ahead.roundSlots.findIndex((s) => s.includes(1));
  assert.ok(first >= 0 && ahead.rounds.slice(0, first + 1).length <= 2, `${ahead.roundSlots}`);
  assert.ok(ahead.rounds.reduce((a, b) => a + b) > 20, `${ahead.rounds}`);
  // The engine's draws were the samplers' own: a slot is rewound only where its sequence ended
  // inside a round, at most once each.
  assert.ok(ahead.rewinds.length <= 3, `rewound ${ahead.rewinds}`);
  // The engine's draw differs from the sampler's at a round's step (f32 sums near a boundary):
  // the sampler's pick stands, the slot is rewound, and its generator is where plain steps leave
  // it.
  for (const wrongAt of [0, 1, 3]) {
    const wrong = await runAll({ ahead: true, sampleTopK: 4, stepMs: 2, wrongAt }, requests);
    assert.deepEqual(wrong.texts, plain.texts, `wrong draw at round step ${wrongAt}`);
  }
  // No top-k (the engine samples only within one): the sequence steps alone, picks agreeing
  // seldom.
  const wide = [requests[0], { ...requests[1], options: { ...sampled, topK: 0, seed: 1 } }];
  const run = await runAll({ ahead: true, sampleTopK: 4, stepMs: 2 }, wide);
  assert.ok(run.roundSlots.every((s) => !s.includes(1)), `${run.roundSlots}`);
  assert.deepEqual(run.texts, (await runAll({ ahead: false }, wide)).texts);
});

Deno.test("decode ahead: penalties the engine applies itself take rounds from the start, as with plain steps", async () => {
  // EOS far below the rest, so that a penalized pick lands on another token and both run long
  const sampled = { temperature: 3, topK: 4, topP: 1, minP: 0 };
  const fake = { eosLogit: -20 };
  const requests = [
    {
      prompt: [1, 2, 3],
      maxTokens: 30,
      options: { ...sampled, presencePenalty: 5, repeatLastN: 6, seed: 7 },
    },
    {
      prompt: [4],
      maxTokens: 30,
      options: { ...sampled, repeatPenalty: 3, frequencyPenalty: 2, repeatLastN: 8, seed: 8 },
    },
  ];
  const plain = await runAll({ ahead: false, ...fake }, requests);
  const unpenalized = await runAll(
    { ahead: false },
    requests.map((r) => ({ ...r, options: { ...sampled, seed: r.options.seed } })),
  );
  assert.notDeepEqual(plain.texts, unpenalized.texts, "the penalties change the answers");
  const ahead = await runAll(
    { ahead: true, sampleTopK: 4, penaltyWindow: 8, stepMs: 2, ...fake },
    requests,
  );
  assert.deepEqual(ahead.texts, plain.texts);
  assert.deepEqual(plain.texts.map((x) => x.length), [30, 30]);
  assert.ok(ahead.roundSlots.slice(0, 2).some((s) => s.length === 2), `${ahead.roundSlots}`);
  assert.ok(ahead.rewinds.length <= 2, `rewound ${ahead.rewinds}`);
  // A window past the engine's: each sequence steps alone until its picks agree with the argmax
  const wide = requests.map((r) => ({ ...r, options: { ...r.options, repeatLastN: 9 } }));
  const run = await runAll(
    { ahead: true, sampleTopK: 4, penaltyWindow: 8, stepMs: 2, ...fake },
    wide,
  );
  assert.deepEqual(run.texts, (await runAll({ ahead: false, ...fake }, wide)).texts);
  assert.ok(run.rounds.length < ahead.rounds.length, `${run.rounds} against ${ahead.rounds}`);
});
