import assert from "node:assert/strict";
import {
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindArgmax, bindTopK, NO_TOKEN, prepareSelect } from "./argmax.ts";

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
