import assert from "node:assert/strict";
import { candidateSet, createSampler, penalize, type SamplerOptions } from "./sampler.ts";

const NEUTRAL: SamplerOptions = { temperature: 1, topK: 0, topP: 1, minP: 0 };

/** Logits whose softmax is exactly `probs`. */
const fromProbs = (probs: number[]) => Float32Array.from(probs, Math.log);

/** Random logits, reproducible from a seed (a tiny LCG, independent of rng.ts). */
function randomLogits(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 20 - 10;
  });
}

Deno.test("greedy picks the argmax, lowest index on ties", () => {
  const s = createSampler({ temperature: 0 });
  assert.equal(s.sample(Float32Array.from([0.1, 3, -1, 2.9]), []).id, 1);
  assert.equal(s.sample(Float32Array.from([1, 5, 5, 5]), []).id, 1);
  assert.equal(s.sample(Float32Array.from([-Infinity, -3, -2]), []).id, 2);
});

Deno.test("temperature near 0 behaves like greedy", () => {
  const logits = randomLogits(1000, 3);
  const greedy = createSampler({ temperature: 0 }).sample(logits, []).id;
  const cold = createSampler({ ...NEUTRAL, temperature: 1e-4, seed: 9 });
  for (let i = 0; i < 200; i++) assert.equal(cold.sample(logits, []).id, greedy);
});

Deno.test("top-k = 1 is greedy at any temperature and seed", () => {
  for (let seed = 0; seed < 20; seed++) {
    const logits = randomLogits(5000, seed);
    const greedy = createSampler({ temperature: 0 }).sample(logits, []).id;
    const s = createSampler({ ...NEUTRAL, temperature: 5, topK: 1, seed });
    assert.equal(s.sample(logits, []).id, greedy);
  }
});

Deno.test("top-p keeps the shortest prefix reaching p", () => {
  const logits = fromProbs([0.1, 0.5, 0.15, 0.25]); // sorted: 1, 3, 2, 0
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topP: 0.4 }), [1]);
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topP: 0.7 }), [1, 3]);
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topP: 0.8 }), [1, 3, 2]);
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topP: 0.95 }), [1, 3, 2, 0]);
});

Deno.test("top-p renormalizes over what top-k kept (llama.cpp chain order)", () => {
  const logits = fromProbs([0.4, 0.3, 0.2, 0.1]);
  // Without top-k, 0.4 < 0.5 so two tokens are needed...
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topP: 0.5 }), [0, 1]);
  // ...after top-k = 2 the first one has 0.4 / 0.7 ≈ 0.57 ≥ 0.5 alone.
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topK: 2, topP: 0.5 }), [0]);
});

Deno.test("min-p keeps tokens with p >= minP * p_max", () => {
  const logits = fromProbs([0.15, 0.5, 0.25, 0.1]);
  // threshold 0.35 * 0.5 = 0.175: keeps 0.5 and 0.25
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, minP: 0.35 }), [1, 2]);
  // threshold 0.125: adds 0.15
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, minP: 0.25 }), [1, 2, 0]);
  // threshold 0.5: only the top
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, minP: 1 }), [1]);
});

Deno.test("top-p over a 150k vocab without top-k matches a full sort", () => {
  const n = 150_000;
  const logits = randomLogits(n, 11);
  for (const topP of [0.5, 0.9, 0.99]) {
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    for (const v of logits) sum += Math.exp(v - max);
    const expected: number[] = [];
    let cum = 0;
    for (const id of order) {
      expected.push(id);
      cum += Math.exp(logits[id] - max) / sum;
      if (cum >= topP) break;
    }
    assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topP }), expected);
  }
});

Deno.test("top-k over a large vocab returns the k best, best first", () => {
  const logits = randomLogits(150_000, 5);
  logits[777] = logits[778] = 50; // a tie at the top: lower id first
  const expected = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b)
    .slice(0, 40);
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, topK: 40 }), expected);
  assert.deepEqual(expected.slice(0, 2), [777, 778]);
});

Deno.test("repetition penalty divides positive and multiplies negative logits", () => {
  const logits = Float32Array.from([2, -2, 1, 4]);
  const out = penalize(logits, [0, 1, 1], { repeatPenalty: 2 });
  assert.deepEqual(Array.from(out), [1, -4, 1, 4]);
  assert.deepEqual(Array.from(logits), [2, -2, 1, 4], "input must not be mutated");
  // Only the last repeatLastN tokens count.
  assert.deepEqual(Array.from(penalize(logits, [0, 1], { repeatPenalty: 2, repeatLastN: 1 })), [
    2,
    -4,
    1,
    4,
  ]);
  assert.deepEqual(Array.from(penalize(logits, [0], { repeatPenalty: 2, repeatLastN: 0 })), [
    2,
    -2,
    1,
    4,
  ]);
  // The penalty changes the greedy choice: token 0 drops from 5 to 5 / 8, below token 2.
  const s = createSampler({ temperature: 0, repeatPenalty: 8 });
  assert.equal(s.sample(Float32Array.from([5, 0, 1]), [0]).id, 2);
});

Deno.test("presence and frequency penalties subtract per token and per occurrence", () => {
  const logits = Float32Array.from([1, 1, 1]);
  const out = penalize(logits, [0, 0, 0, 1], { presencePenalty: 0.5, frequencyPenalty: 0.25 });
  assert.deepEqual(Array.from(out), [1 - 0.75 - 0.5, 1 - 0.25 - 0.5, 1]);
});

Deno.test("same seed gives the same samples, different seeds differ", () => {
  const logits = new Float32Array(100); // uniform over 100 tokens
  const run = (seed: number) => {
    const s = createSampler({ ...NEUTRAL, seed });
    return Array.from({ length: 50 }, () => s.sample(logits, []).id);
  };
  assert.deepEqual(run(1234), run(1234));
  assert.notDeepEqual(run(1234), run(1235));
  const unseeded = createSampler(NEUTRAL);
  assert.equal(typeof unseeded.seed, "number");
});

Deno.test("empirical frequencies match the distribution over 20k draws", () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const check = (options: SamplerOptions, expected: number[]) => {
    const s = createSampler({ ...NEUTRAL, seed: 2024, ...options });
    const counts = new Array(probs.length).fill(0);
    const n = 20_000;
    for (let i = 0; i < n; i++) counts[s.sample(fromProbs(probs), []).id]++;
    expected.forEach((p, id) => {
      const tolerance = 4.5 * Math.sqrt(Math.max(p * (1 - p), 1e-9) / n) + 1e-9;
      assert.ok(
        Math.abs(counts[id] / n - p) <= tolerance,
        `token ${id}: ${counts[id] / n} vs ${p}`,
      );
    });
  };
  check({}, probs);
  // Temperature 2 flattens: p^(1/2) renormalized.
  const root = probs.map(Math.sqrt);
  const z = root.reduce((a, b) => a + b);
  check({ temperature: 2 }, root.map((r) => r / z));
  // top-k 2 renormalizes over the two best.
  check({ topK: 2 }, [0.5 / 0.8, 0.3 / 0.8, 0, 0]);
});

Deno.test("logprobs come from the raw logits, whatever the sampling settings", () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const logits = fromProbs(probs);
  const s = createSampler({
    temperature: 0,
    repeatPenalty: 3,
    topLogprobs: 3,
  });
  // Token 0's logit ln(0.5) is negative, so the penalty triples it and token 1 wins.
  const out = s.sample(logits, [0]);
  assert.equal(out.id, 1);
  assert.ok(Math.abs(out.logprob - Math.log(0.3)) < 1e-6);
  assert.deepEqual(out.topLogprobs?.map((t) => t.id), [0, 1, 2]);
  out.topLogprobs?.forEach((t) => assert.ok(Math.abs(t.logprob - Math.log(probs[t.id])) < 1e-6));
  assert.equal(createSampler({ temperature: 0 }).sample(logits, []).topLogprobs, undefined);
});

Deno.test("defaults follow llama.cpp and bad options are rejected by name", () => {
  const s = createSampler();
  assert.equal(s.options.temperature, 0.8);
  assert.equal(s.options.topK, 40);
  assert.equal(s.options.repeatLastN, 64);
  assert.throws(() => createSampler({ topP: 0 }), /topP/);
  assert.throws(() => createSampler({ topK: -1 }), /topK/);
  assert.throws(() => createSampler({ minP: 2 }), /minP/);
  assert.throws(() => createSampler({ repeatPenalty: 0 }), /repeatPenalty/);
  assert.throws(() => createSampler({ temperature: Number.NaN }), /temperature/);
  assert.throws(() => createSampler().sample(new Float32Array(0), []), /empty/);
});

Deno.test("a sampler made from another's rngState continues its draws exactly", () => {
  const logits = randomLogits(300, 17);
  const options: SamplerOptions = { temperature: 0.8, topK: 0, topP: 1, minP: 0, seed: 1234 };
  const first = createSampler(options);
  const picks: number[] = [];
  let state: number[] = [];
  for (let i = 0; i < 20; i++) {
    if (i === 10) state = first.rngState();
    picks.push(first.sample(logits, []).id);
  }
  assert.ok(new Set(picks).size > 3, `the draws vary: ${picks}`);
  const second = createSampler({ ...options, rngState: state });
  assert.equal(second.seed, 1234, "the seed is still reported");
  const rest = Array.from({ length: 10 }, () => second.sample(logits, []).id);
  assert.deepEqual(rest, picks.slice(10));
  assert.deepEqual(second.rngState(), first.rngState());
  assert.notDeepEqual(rest, picks.slice(0, 10), "not a start over from the seed");
  for (const bad of [[1, 2, 3], [0, 0, 0, 0], [1, 2, 3, -1], [1, 2, 3, 2 ** 32]]) {
    assert.throws(() => createSampler({ rngState: bad }), /rngState must be 4 uint32 words/);
  }
});

Deno.test("logit_bias: -100 bans the greedy pick, +100 forces a token, at any temperature", () => {
  for (let seed = 0; seed < 20; seed++) {
    const logits = randomLogits(500, seed);
    const best = createSampler({ temperature: 0 }).sample(logits, []).id;
    const banned = createSampler({ temperature: 0, logitBias: { [best]: -100 } });
    assert.notEqual(banned.sample(logits, []).id, best);
    const hot = createSampler({ ...NEUTRAL, temperature: 2, seed, logitBias: { [best]: -100 } });
    for (let i = 0; i < 50; i++) assert.notEqual(hot.sample(logits, []).id, best);
    // The worst token, pushed by +100, beats logits spread over [-10, 10].
    const worst = logits.indexOf(Math.min(...logits));
    const forced = createSampler({ ...NEUTRAL, temperature: 1, seed, logitBias: { [worst]: 100 } });
    assert.equal(forced.sample(logits, []).id, worst);
  }
});

Deno.test("logit_bias comes before the penalties and leaves the reported logprobs raw", () => {
  const logits = Float32Array.from([2, 1, 0]);
  const out = penalize(logits, [1], { repeatPenalty: 2, logitBias: { "1": 3 } });
  assert.deepEqual(Array.from(out), [2, 2, 0], "(1 + 3) / 2");
  const s = createSampler({ temperature: 0, logitBias: { "2": 5 } });
  const pick = s.sample(logits, []);
  assert.equal(pick.id, 2);
  const lse = Math.log(Math.exp(2) + Math.exp(1) + 1);
  assert.ok(Math.abs(pick.logprob - (0 - lse)) < 1e-6, "the model's own logprob of token 2");
  assert.deepEqual(candidateSet(logits, [], { ...NEUTRAL, logitBias: { "0": -100 } }), [1, 2]);
});

Deno.test("logit_bias is checked: token ids in the vocabulary, values in [-100, 100]", () => {
  assert.equal(createSampler({ logitBias: {} }).options.logitBias, undefined, "empty is none");
  assert.deepEqual(createSampler({ logitBias: { "7": 1 } }).options.logitBias, { "7": 1 });
  assert.throws(() => createSampler({ logitBias: { "5": 101 } }), /from -100 to 100, got 101/);
  assert.throws(() => createSampler({ logitBias: { "5": Number.NaN } }), /token 5/);
  assert.throws(() => createSampler({ logitBias: { "-1": 1 } }), /"-1" is not a token id/);
  assert.throws(() => createSampler({ logitBias: { "x": 1 } }), /"x" is not a token id/);
  assert.throws(
    () => createSampler({ logitBias: { "512": 1 }, vocabSize: 512 }),
    /token 512 is outside the vocabulary \(512 tokens\)/,
  );
  createSampler({ logitBias: { "511": 1 }, vocabSize: 512 });
  const all = createSampler({ temperature: 0, logitBias: { "0": -100, "1": -100 } });
  assert.throws(() => all.sample(Float32Array.from([1, 2]), []), /every token is excluded/);
});
