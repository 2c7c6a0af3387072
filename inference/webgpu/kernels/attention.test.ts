import assert from "node:assert/strict";
import {
  assertClose,
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import {
  type AttentionLayout,
  bindAttention,
  bindKvWrite,
  createKvCache,
  prepareAttention,
  supportsAttention,
} from "./attention.ts";

interface Shape {
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
}

/** The attention loop of reference.ts forwardLayers, for n queries at pos0.. over a filled cache. */
function cpuAttention(
  s: Shape,
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  n: number,
  pos0: number,
  window = 0,
): Float32Array {
  const { heads, kvHeads, headDim, valueDim } = s;
  const qDim = heads * headDim, kDim = kvHeads * headDim, vDim = kvHeads * valueDim;
  const group = heads / kvHeads, scale = 1 / Math.sqrt(headDim);
  const att = new Float32Array(n * heads * valueDim);
  const scores = new Float64Array(pos0 + n);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < heads; h++) {
      const qo = t * qDim + h * headDim, kvh = Math.floor(h / group);
      let max = -Infinity;
      const lo = window > 0 ? Math.max(0, pos0 + t - window + 1) : 0;
      for (let p = lo; p <= pos0 + t; p++) {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[qo + i] * keys[p * kDim + kvh * headDim + i];
        scores[p] = dot * scale;
        max = Math.max(max, scores[p]);
      }
      let sum = 0;
      for (let p = lo; p <= pos0 + t; p++) sum += scores[p] = Math.exp(scores[p] - max);
      const ao = t * heads * valueDim + h * valueDim;
      for (let p = lo; p <= pos0 + t; p++) {
        for (let i = 0; i < valueDim; i++) {
          att[ao + i] += (scores[p] / sum) * values[p * vDim + kvh * valueDim + i];
        }
      }
    }
  }
  return att;
}

/** Both layouts: prefill `n0` positions, then decode one more, against the CPU loop. */
async function check(s: Shape, n0: number, seed: number, qScale = 1, window = 0) {
  for (const layout of ["workgroup", "lane"] as const) {
    await checkLayout(layout, s, n0, seed, qScale, window);
  }
}

async function checkLayout(
  layout: AttentionLayout,
  s: Shape,
  n0: number,
  seed: number,
  qScale: number,
  window: number,
) {
  const { device } = await createTestGpu();
  await prepareAttention(device, s);
  assert.ok(supportsAttention(s));
  const ctxSize = n0 + 4;
  const kDim = s.kvHeads * s.headDim, vDim = s.kvHeads * s.valueDim;
  const qDim = s.heads * s.headDim, oDim = s.heads * s.valueDim;
  const total = n0 + 1;
  const k = randomF32(total * kDim, seed, 1), v = randomF32(total * vDim, seed + 1, 1);
  const q = randomF32(total * qDim, seed + 2, qScale);
  const cache = createKvCache(device, { layers: 1, ctxSize, ...s });
  const kb = uploadF32(device, k), vb = uploadF32(device, v), qb = uploadF32(device, q);
  const out = createF32(device, total * oDim);
  const caches = { keys: cache.keys[0], values: cache.values[0] };

  // prefill: positions 0 .. n0-1
  const write = bindKvWrite(device, { k: kb, v: vb, ...caches }, { n: n0, kDim, vDim, pos0: 0 });
  const att = bindAttention(
    device,
    { q: qb, out, ...caches },
    { n: n0, pos0: 0, window, ...s },
    layout,
  );
  submitKernels(device, [write, att]);
  const prefill = await readF32(device, out, n0 * oDim);
  assertClose(
    prefill,
    cpuAttention(s, q, k, v, n0, 0, window),
    { atol: 2e-5, rtol: 1e-4 },
    `${layout} prefill`,
  );

  // decode: the same bound kernels, moved to position n0 with offsets into the inputs
  write.update({ n: 1, kDim, vDim, pos0: n0, kOffset: n0 * kDim, vOffset: n0 * vDim });
  att.update({ n: 1, pos0: n0, qOffset: n0 * qDim, outOffset: n0 * oDim, window, ...s });
  submitKernels(device, [write, att]);
  const decode = await readF32(device, out, oDim, n0 * oDim * 4);
  const want = cpuAttention(s, q, k, v, total, 0, window).subarray(n0 * oDim);
  assertClose(decode, want, { atol: 2e-5, rtol: 1e-4 }, `${layout} decode`);

  // the cache holds exactly the rows written, and nothing past them
  const keys = await readF32(device, cache.keys[0], ctxSize * kDim);
  assertClose(keys.subarray(0, total * kDim), k, { atol: 0, rtol: 0 }, "key cache");
  assert.ok(keys.subarray(total * kDim).every((x) => x === 0));
  const values = await readF32(device, cache.values[0], ctxSize * vDim);
  assertClose(values.subarray(0, total * vDim), v, { atol: 0, rtol: 0 }, "value cache");

  // a write past the cache is refused, not dropped
  assert.throws(
    () => write.update({ n: 5, kDim, vDim, pos0: ctxSize - 4 }),
    /context full: \d+ \+ 5 positions exceed the KV cache \(\d+\)/,
  );
}

Deno.test("attention: stories260K shape (8 heads / 4 kv heads, headDim 8), 70 positions", async () => {
  await check({ heads: 8, kvHeads: 4, headDim: 8, valueDim: 8 }, 70, 1);
});

Deno.test("attention: no GQA, headDim 64, non-power-of-2 length crossing a tile", async () => {
  await check({ heads: 3, kvHeads: 3, headDim: 64, valueDim: 64 }, 97, 2);
});

Deno.test("attention: GQA ratio 4, valueDim differs from headDim", async () => {
  await check({ heads: 4, kvHeads: 1, headDim: 64, valueDim: 40 }, 33, 3);
});

Deno.test("attention: large scores stay finite (max-subtracted softmax)", async () => {
  // q ~ ±40: scores reach hundreds, exp() without the max would overflow f32
  await check({ heads: 2, kvHeads: 1, headDim: 64, valueDim: 64 }, 20, 4, 40);
});

Deno.test("attention: a sliding window of 8 over 90 positions (gemma3's local layers)", async () => {
  await check({ heads: 4, kvHeads: 1, headDim: 64, valueDim: 64 }, 90, 5, 1, 8);
  // A window as wide as a workgroup tile and one past the positions: the tile edges.
  await check({ heads: 2, kvHeads: 2, headDim: 16, valueDim: 16 }, 130, 6, 1, 64);
  await check({ heads: 2, kvHeads: 2, headDim: 16, valueDim: 16 }, 30, 7, 1, 100);
});

Deno.test("attention: unsupported shapes are refused by name", async () => {
  const { device } = await createTestGpu();
  const b = createF32(device, 4);
  const buffers = { q: b, keys: b, values: b, out: b };
  assert.throws(
    () =>
      bindAttention(device, buffers, {
        n: 1,
        pos0: 0,
        heads: 6,
        kvHeads: 4,
        headDim: 8,
        valueDim: 8,
      }),
    /not a multiple of 4 kv heads/,
  );
  assert.throws(
    () =>
      bindAttention(device, buffers, {
        n: 1,
        pos0: 0,
        heads: 1,
        kvHeads: 1,
        headDim: 512,
        valueDim: 8,
      }),
    /headDim 512/,
  );
  assert.throws(
    () =>
      bindAttention(device, buffers, {
        n: 1,
        pos0: 0,
        heads: 2,
        kvHeads: 1,
        headDim: 8,
        valueDim: 6,
      }),
    /valueDim 6 is not a multiple of 4/,
  );
});
