import assert from "node:assert/strict";
import {
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import {
  bindAppend,
  bindArgmax,
  bindPenalize,
  bindSample,
  bindTopK,
  NO_TOKEN,
  prepareSelect,
} from "./argmax.ts";
import { createSampler, type SamplerOptions } from "../../sampler.ts";
import { rngFromState } from "../../rng.ts";

async function readU32(device: GPUDevice, buffer: GPUBuffer, n: number): Promise<number[]> {
  const f = await readF32(device, buffer, n);
  return [...new Uint32Array(f.buffer, f.byteOffset, n)];
}

/** The k best (value desc, then index asc), as the CPU sampler orders them. */
function cpuTopK(x: Float32Array, k: number): number[] {
  return [...x.keys()].sort((a, b) => x[b] - x[a] || a - b).slice(0, k);
}

function cpuArgmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

Deno.test("argmax: random rows, ties to the lowest index, offsets", async () => {
  const { device } = await createTestGpu();
  await prepareSelect(device);
  const ids = createF32(device, 4);
  for (const [n, seed] of [[1, 1], [7, 2], [512, 3], [32001, 4]]) {
    const x = randomF32(n, seed, 10);
    const buf = uploadF32(device, x);
    submitKernels(device, [bindArgmax(device, { logits: buf, ids }, { n, outOffset: 2 })]);
    assert.equal((await readU32(device, ids, 3))[2], cpuArgmax(x), `n=${n}`);
  }
  // the max appears three times, in different invocations' strides: the first wins
  const x = randomF32(3000, 5);
  x[2999] = x[1234] = x[1301] = 5;
  const buf = uploadF32(device, new Float32Array([...new Float32Array(3), ...x]));
  submitKernels(device, [bindArgmax(device, { logits: buf, ids }, { n: 3000, offset: 3 })]);
  assert.equal((await readU32(device, ids, 1))[0], 1234);
  // all equal: index 0
  const flat = uploadF32(device, new Float32Array(600).fill(-2));
  submitKernels(device, [bindArgmax(device, { logits: flat, ids }, { n: 600 })]);
  assert.equal((await readU32(device, ids, 1))[0], 0);
});

Deno.test("argmax: NaN logits are passed over", async () => {
  const { device } = await createTestGpu();
  const x = randomF32(300, 6);
  x[10] = NaN;
  x[200] = 9;
  const ids = createF32(device, 1);
  submitKernels(device, [bindArgmax(device, { logits: uploadF32(device, x), ids }, { n: 300 })]);
  assert.equal((await readU32(device, ids, 1))[0], 200);
});

Deno.test("top-k: ids and values in order, against a full sort", async () => {
  const { device } = await createTestGpu();
  await prepareSelect(device);
  for (const [n, k, seed] of [[1000, 40, 7], [32000, 64, 8], [50, 1, 9], [300, 64, 10]]) {
    const x = randomF32(n, seed, 8);
    // ties across invocation strides (index 3 and 700 belong to different lanes)
    if (n > 700) x[3] = x[700] = x[5] = 8.5;
    const ids = createF32(device, k), values = createF32(device, k);
    submitKernels(device, [
      bindTopK(device, { logits: uploadF32(device, x), ids, values }, { n, k }),
    ]);
    const want = cpuTopK(x, k);
    assert.deepEqual(await readU32(device, ids, k), want, `n=${n} k=${k}`);
    assert.deepEqual([...await readF32(device, values, k)], want.map((i) => x[i]));
  }
});

Deno.test("top-k: k above the row length pads with NO_TOKEN; bad k is refused", async () => {
  const { device } = await createTestGpu();
  const x = new Float32Array([0.5, 3, -1]);
  const ids = createF32(device, 5), values = createF32(device, 5);
  const logits = uploadF32(device, x);
  submitKernels(device, [bindTopK(device, { logits, ids, values }, { n: 3, k: 5 })]);
  assert.deepEqual(await readU32(device, ids, 5), [1, 0, 2, NO_TOKEN, NO_TOKEN]);
  assert.throws(() => bindTopK(device, { logits, ids, values }, { n: 3, k: 65 }), /k = 65/);
  assert.throws(() => bindTopK(device, { logits, ids, values }, { n: 3, k: 0 }), /k = 0/);
});

/** A device buffer holding `words` u32s. */
function uploadU32(device: GPUDevice, words: number[]): GPUBuffer {
  const f = new Float32Array(new Uint32Array(words).buffer);
  return uploadF32(device, f, "u32");
}

Deno.test("sample: the device draws the picks sampler.ts draws, a sure pick taking no draw", async () => {
  const { device } = await createTestGpu();
  await prepareSelect(device);
  const cases: [number, SamplerOptions][] = [
    [512, { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 }], // llama.cpp's defaults
    [1000, { temperature: 1.5, topK: 64, topP: 0.5, minP: 0 }],
    [300, { temperature: 0.3, topK: 20, topP: 1, minP: 0 }],
    [300, { temperature: 1, topK: 1, topP: 1, minP: 0 }],
    [32000, { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.1 }],
  ];
  for (const [ci, [n, options]] of cases.entries()) {
    const sampler = createSampler({ ...options, seed: 100 + ci });
    const ahead = rngFromState(sampler.rngState());
    const draws = Array.from({ length: 8 }, () => ahead.nextFloat());
    const logits = createF32(device, n), ids = createF32(device, 1);
    const drawn = uploadU32(device, [0]);
    const kernel = bindSample(device, {
      logits,
      ids,
      draws: uploadF32(device, new Float32Array(draws)),
      drawn,
    }, { n, k: options.topK!, ...options as Required<SamplerOptions>, firstDraw: 0 });
    for (let step = 0; step < 6; step++) {
      const x = randomF32(n, 1000 * ci + step, 3);
      // step 2: one token far ahead, the only one min-p (or top-p) keeps: no draw is taken
      if (step === 2) x[n - 7] = 60;
      device.queue.writeBuffer(logits, 0, new Float32Array(x));
      submitKernels(device, [kernel]);
      const want = sampler.sample(x, []).id;
      assert.equal((await readU32(device, ids, 1))[0], want, `case ${ci} step ${step}`);
    }
    // The draws the device used are those the sampler's generator gave: it goes on in step.
    const used = (await readU32(device, drawn, 1))[0];
    const replay = rngFromState(createSampler({ ...options, seed: 100 + ci }).rngState());
    for (let i = 0; i < used; i++) replay.nextFloat();
    assert.deepEqual(replay.state(), sampler.rngState(), `case ${ci}: ${used} draws`);
  }
});

Deno.test("sample: bad settings are refused by name", async () => {
  const { device } = await createTestGpu();
  const bufs = {
    logits: createF32(device, 4),
    ids: createF32(device, 1),
    draws: createF32(device, 1),
    drawn: createF32(device, 1),
  };
  const ok = { n: 4, k: 2, temperature: 1, topP: 1, minP: 0, firstDraw: 0 };
  assert.throws(() => bindSample(device, bufs, { ...ok, k: 65 }), /top-k 65/);
  assert.throws(() => bindSample(device, bufs, { ...ok, temperature: 0 }), /temperature 0/);
});

Deno.test("penalties: the device penalizes the recent tokens as sampler.ts does, its ring moving on", async () => {
  const { device } = await createTestGpu();
  await prepareSelect(device);
  const n = 400;
  const cases: SamplerOptions[] = [
    { temperature: 0, repeatPenalty: 1.3, repeatLastN: 8, frequencyPenalty: 0.4 }, // argmax
    { temperature: 0.8, repeatPenalty: 1.1, repeatLastN: 64, presencePenalty: 0.6, topK: 40 },
  ];
  for (const [ci, options] of cases.entries()) {
    const sampler = createSampler({ ...options, seed: 200 + ci });
    const window = options.repeatLastN!;
    // the history repeats a few tokens, and the logits favour them, so the penalties decide
    const history = [5, 9, 5, 12, 9, 5, 300, 12, 7, 5];
    const ahead = rngFromState(sampler.rngState());
    const draws = Array.from({ length: 8 }, () => ahead.nextFloat());
    const logits = createF32(device, n), work = createF32(device, n), ids = createF32(device, 1);
    const recent = uploadU32(device, [...history.slice(-window), ...new Array(64).fill(0)]);
    const ring = uploadU32(device, [0, Math.min(window, history.length)]);
    const drawn = uploadU32(device, [0]);
    const p = {
      offset: 0,
      row: 0,
      window,
      repeat: options.repeatPenalty!,
      frequency: 0,
      presence: 0,
    };
    const penalize = bindPenalize(device, { logits, work, recent, ring }, {
      ...p,
      frequency: options.frequencyPenalty ?? 0,
      presence: options.presencePenalty ?? 0,
    });
    const pick = options.temperature! > 0
      ? bindSample(device, {
        logits: work,
        ids,
        draws: uploadF32(device, new Float32Array(draws)),
        drawn,
      }, { n, k: 40, temperature: 0.8, topP: 0.95, minP: 0.05, firstDraw: 0 })
      : bindArgmax(device, { logits: work, ids }, { n });
    const append = bindAppend(device, { ids, recent, ring }, p);
    for (let step = 0; step < 6; step++) {
      const x = randomF32(n, 500 * ci + step, 1);
      for (const t of [5, 9, 12, 300, 7]) x[t] += 2;
      device.queue.writeBuffer(logits, 0, new Float32Array(x));
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(logits, 0, work, 0, n * 4);
      const pass = enc.beginComputePass();
      for (const k of [penalize, pick, append]) k.encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      const want = sampler.sample(x, history).id;
      assert.equal((await readU32(device, ids, 1))[0], want, `case ${ci} step ${step}`);
      history.push(want);
    }
    // the raw logits are untouched: the host reads them back for logprobs and its own check
    assert.equal((await readF32(device, logits, 1))[0], randomF32(n, 500 * ci + 5, 1)[0]);
  }
});
