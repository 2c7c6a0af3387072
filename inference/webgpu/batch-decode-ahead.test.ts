/**
 * decodeAhead: several decode steps in one readback, the engine feeding each row its own argmax.
 * Its logits must be the ones plain steps give when fed the same tokens, and a rewind after it
 * must leave a slot as plain steps would have.
 */
import assert from "node:assert/strict";
import { createBatchedWebGpuEngine } from "./batch-forward.ts";
import { createTestGpu } from "../../tests/support/gpu.ts";
import { STORIES } from "../../tests/support/fixtures.ts";
import { createSampler, type SamplerOptions } from "../sampler.ts";
import { rngFromState } from "../rng.ts";

const CTX = 64;

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

async function twoBatches() {
  const gpu = await createTestGpu();
  const a = await createBatchedWebGpuEngine({ path: STORIES, ctxSize: CTX, gpu, maxSlots: 3 });
  const b = await createBatchedWebGpuEngine({ path: STORIES, ctxSize: CTX, gpu, maxSlots: 3 });
  return { ahead: a, plain: b, close: () => (a.engine.close(), b.engine.close()) };
}

Deno.test("WebGPU batch: decodeAhead feeds each row its argmax and gives the logits plain steps give", async () => {
  const { ahead, plain, close } = await twoBatches();
  try {
    const prompts = [[1, 400, 32, 77, 5], [1, 300, 301], [1, 9, 12, 250]];
    const slots = prompts.map(() => ahead.batch.acquire()!);
    prompts.forEach(() => plain.batch.acquire());
    const first = await ahead.batch.step(prompts.map((tokens, i) => ({ slot: slots[i], tokens })));
    const next = first.map(argmax);
    const plainFirst = await plain.batch.step(
      prompts.map((tokens, i) => ({ slot: slots[i], tokens })),
    );
    assert.deepEqual(plainFirst.map(argmax), next);

    const steps = 5;
    const out = await ahead.batch.decodeAhead!(
      slots.map((slot, i) => ({ slot, token: next[i] })),
      steps,
    );
    assert.equal(out.logits.length, steps);
    assert.equal(out.fed.length, steps - 1);
    for (const slot of slots) {
      assert.equal(ahead.batch.position(slot), prompts[slot].length + steps);
    }

    // The same tokens through plain steps, one readback each: the same logits, bit for bit
    // (the same kernels over the same rows), and the engine fed exactly the argmax.
    let feed = next;
    for (let j = 0; j < steps; j++) {
      const want = await plain.batch.step(slots.map((slot, i) => ({ slot, tokens: [feed[i]] })));
      slots.forEach((_, i) => assert.deepEqual(out.logits[j][i], want[i], `step ${j}, row ${i}`));
      if (j + 1 < steps) {
        assert.deepEqual(out.fed[j], want.map(argmax), `tokens fed after step ${j}`);
        feed = out.fed[j];
      }
    }
  } finally {
    close();
  }
});

Deno.test("WebGPU batch: decodeAhead picks a sampling row's tokens as its sampler would", async () => {
  const { ahead, close } = await twoBatches();
  try {
    const prompts = [[1, 400, 32, 77, 5], [1, 300, 301], [1, 9, 12, 250]];
    // row 0 greedy (argmax); rows 1 and 2 picked on the device at their own settings, in a
    // second round with penalties over the tokens they read (one greedy, one drawn)
    const rounds: (SamplerOptions | undefined)[][] = [
      [
        undefined,
        { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: 11 },
        { temperature: 1.3, topK: 64, topP: 1, minP: 0, seed: 12 },
      ],
      [
        undefined,
        { temperature: 0, repeatPenalty: 1.5, repeatLastN: 6, frequencyPenalty: 0.5 },
        {
          temperature: 0.9,
          topK: 40,
          repeatPenalty: 1.3,
          repeatLastN: 64,
          presencePenalty: 1,
          seed: 13,
        },
      ],
    ];
    for (const settings of rounds) {
      const samplers = settings.map((o) => o && createSampler(o));
      const slots = prompts.map(() => ahead.batch.acquire()!);
      const histories = prompts.map((p) => [...p]);
      const first = await ahead.batch.step(
        prompts.map((tokens, i) => ({ slot: slots[i], tokens })),
      );
      const steps = 9;
      const rows = slots.map((slot, i) => {
        const s = samplers[i];
        const token = s ? s.sample(first[i], histories[i]).id : argmax(first[i]);
        histories[i].push(token);
        if (!s) return { slot, token };
        const next = rngFromState(s.rngState());
        const draws = Array.from({ length: steps - 1 }, () => next.nextFloat());
        const o = s.options;
        const penalties = o.repeatPenalty === 1 && o.presencePenalty === 0 &&
            o.frequencyPenalty === 0
          ? undefined
          : {
            repeat: o.repeatPenalty,
            frequency: o.frequencyPenalty,
            presence: o.presencePenalty,
            window: o.repeatLastN,
            recent: histories[i].slice(-o.repeatLastN),
          };
        return { slot, token, sampling: { ...o, draws, penalties } };
      });
      const out = await ahead.batch.decodeAhead!(rows, steps);
      // Each fed token is what the row's own sampler picks from the logits read back (its
      // generator and history going on as it picks), or the argmax for the greedy row.
      for (let j = 0; j + 1 < steps; j++) {
        slots.forEach((_, i) => {
          const s = samplers[i], logits = out.logits[j][i];
          const want = s ? s.sample(logits, histories[i]).id : argmax(logits);
          assert.equal(out.fed[j][i], want, `step ${j}, row ${i}`);
          histories[i].push(want);
        });
      }
      slots.forEach((slot) => ahead.batch.release(slot));
    }
    const slot = ahead.batch.acquire()!;
    await ahead.batch.step([{ slot, tokens: [1, 2] }]);
    const row = { slot, token: 5 };
    const sampling = { temperature: 0.8, topK: 40, topP: 1, minP: 0, draws: [0.5, 0.5] };
    await assert.rejects(
      ahead.batch.decodeAhead!([{ ...row, sampling: { ...sampling, topK: 65 } }], 2),
      /top-k 1\.\.64, not 65/,
    );
    await assert.rejects(
      ahead.batch.decodeAhead!([{ ...row, sampling: { ...sampling, draws: [] } }], 3),
      /3 steps need 2 draws, not 0/,
    );
    const penalties = { repeat: 1.1, frequency: 0, presence: 0, window: 65, recent: [] };
    await assert.rejects(
      ahead.batch.decodeAhead!([{ ...row, sampling: { ...sampling, penalties } }], 2),
      /last 1\.\.64 tokens, not 65/,
    );
    assert.equal(ahead.batch.position(slot), 2, "a refused run moves nothing");
  } finally {
    close();
  }
});

Deno.test("WebGPU batch: a rewind after decodeAhead redoes a step as if the run had stopped there", async () => {
  const { ahead, plain, close } = await twoBatches();
  try {
    const prompt = [1, 400, 32, 77, 5];
    const slot = ahead.batch.acquire()!;
    plain.batch.acquire();
    const t0 = argmax((await ahead.batch.step([{ slot, tokens: prompt }]))[0]);
    await plain.batch.step([{ slot, tokens: prompt }]);
    const out = await ahead.batch.decodeAhead!([{ slot, token: t0 }], 4);
    // The caller sampled another token than the engine's first pick: positions past it go.
    const other = (out.fed[0][0] + 1) % ahead.batch.vocabSize;
    ahead.batch.rewind(slot, prompt.length + 1);
    const redo = await ahead.batch.step([{ slot, tokens: [other] }]);
    await plain.batch.step([{ slot, tokens: [t0] }]);
    const want = await plain.batch.step([{ slot, tokens: [other] }]);
    assert.deepEqual(redo[0], want[0]);
    assert.equal(ahead.batch.position(slot), prompt.length + 2);
  } finally {
    close();
  }
});

Deno.test("WebGPU batch: decodeAhead checks its rows, steps and room before it runs", async () => {
  const { ahead, close } = await twoBatches();
  try {
    const { batch } = ahead;
    const slot = batch.acquire()!;
    await batch.step([{ slot, tokens: [1, 2, 3] }]);
    await assert.rejects(batch.decodeAhead!([{ slot, token: 5 }], 0), /whole number of steps/);
    await assert.rejects(batch.decodeAhead!([{ slot: 2, token: 5 }], 2), /slot 2 is not in use/);
    await assert.rejects(
      batch.decodeAhead!([{ slot, token: batch.vocabSize }], 2),
      /outside the vocabulary/,
    );
    await assert.rejects(batch.decodeAhead!([{ slot, token: 5 }], CTX), /context full/);
    assert.equal(batch.position(slot), 3, "a refused run moves nothing");
  } finally {
    close();
  }
});
