import assert from "node:assert/strict";
import {
  assertClose,
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
  uploadU32,
} from "../../../tests/support/gpu.ts";
import { attendRow } from "../../attention.ts";
import type { ModelConfig } from "../../model-config.ts";
import { swigluOai } from "../../gpt-oss.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindAddId, bindSwigluOai } from "./gpt-oss.ts";
import {
  bindAttention,
  bindAttentionRows,
  bindKvWrite,
  bindKvWriteRows,
  createKvCache,
} from "./attention.ts";

Deno.test("gpt-oss kernels: add_id adds each pair's chosen expert's bias", async () => {
  const { device } = await createTestGpu();
  const width = 12, experts = 4;
  const ids = Uint32Array.of(3, 0, 2, 3, 1);
  const a = randomF32(ids.length * width, 1, 1), bias = randomF32(experts * width, 2, 1);
  const want = a.map((x, i) => x + bias[ids[Math.floor(i / width)] * width + (i % width)]);
  const ab = uploadF32(device, a);
  const k = bindAddId(
    device,
    {
      a: ab,
      bias: uploadF32(device, bias),
      ids: uploadU32(device, ids),
    },
    width,
    { n: a.length },
  );
  submitKernels(device, [k]);
  assertClose(await readF32(device, ab, a.length), want, { atol: 1e-6, rtol: 0 }, "add_id");
});

Deno.test("gpt-oss kernels: swiglu_oai as the CPU's, clamps included", async () => {
  const { device } = await createTestGpu();
  // A spread of 6 puts many gates above 7 and many ups past ±7.
  const gate = randomF32(1000, 3, 12), up = randomF32(1000, 4, 12);
  const want = gate.slice();
  swigluOai(want, up, want.length);
  const ab = uploadF32(device, gate);
  submitKernels(device, [bindSwigluOai(device, { a: ab, b: uploadF32(device, up) }, { n: 1000 })]);
  assertClose(await readF32(device, ab, 1000), want, { atol: 1e-5, rtol: 1e-5 }, "swiglu_oai");
});

const shape = { heads: 4, kvHeads: 2, headDim: 8, valueDim: 8 };
const config = shape as unknown as ModelConfig;

/** attendRow (sinks and window as given) for each of n queries at positions 0 .. n-1. */
function cpuAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  n: number,
  sinks: Float32Array,
  window: number,
) {
  const qDim = shape.heads * shape.headDim, oDim = shape.heads * shape.valueDim;
  const out = new Float32Array(n * oDim);
  const scores = new Float32Array(n);
  for (let t = 0; t < n; t++) {
    attendRow(config, q, t * qDim, k, v, t, scores, out, t * oDim, window, sinks);
  }
  return out;
}

for (const layout of ["workgroup", "lane"] as const) {
  for (const window of [0, 5]) {
    Deno.test(`attention with sinks (${layout}, window ${window}): attendRow's numbers`, async () => {
      const { device } = await createTestGpu();
      const n = 9;
      const kDim = shape.kvHeads * shape.headDim, vDim = shape.kvHeads * shape.valueDim;
      const q = randomF32(n * shape.heads * shape.headDim, 5, 2);
      const k = randomF32(n * kDim, 6, 1), v = randomF32(n * vDim, 7, 1);
      // One sink far above the scores (it takes nearly all the weight), one far below.
      const sinks = Float32Array.of(0.5, 8, -1, -30);
      const want = cpuAttention(q, k, v, n, sinks, window);
      const oDim = shape.heads * shape.valueDim;

      const cache = createKvCache(device, { layers: 1, ctxSize: n, ...shape });
      const caches = { keys: cache.keys[0], values: cache.values[0] };
      const out = createF32(device, n * oDim);
      const write = bindKvWrite(device, {
        k: uploadF32(device, k),
        v: uploadF32(device, v),
        ...caches,
      }, { n, kDim, vDim, pos0: 0 });
      const att = bindAttention(
        device,
        { q: uploadF32(device, q), out, sinks: uploadF32(device, sinks), ...caches },
        { n, pos0: 0, window, ...shape },
        layout,
      );
      submitKernels(device, [write, att]);
      assertClose(await readF32(device, out, n * oDim), want, { atol: 2e-6, rtol: 1e-4 }, layout);

      // The ROWS variant (batched sequences): the same rows, one slot, each at its position.
      const rows = uploadU32(
        device,
        Uint32Array.from({ length: 2 * n }, (_, i) => i % 2 ? i >> 1 : 0),
      );
      const cacheR = createKvCache(device, { layers: 1, ctxSize: n, ...shape });
      const cachesR = { keys: cacheR.keys[0], values: cacheR.values[0] };
      const outR = createF32(device, n * oDim);
      const writeR = bindKvWriteRows(device, {
        rows,
        k: uploadF32(device, k),
        v: uploadF32(device, v),
        ...cachesR,
      }, { n, kDim, vDim, ctx: n });
      const attR = bindAttentionRows(
        device,
        {
          rows,
          q: uploadF32(device, q),
          out: outR,
          sinks: uploadF32(device, sinks),
          ...cachesR,
        },
        { n, ctx: n, window, ...shape },
        layout,
      );
      submitKernels(device, [writeR, attR]);
      const got = await readF32(device, outR, n * oDim);
      assertClose(got, want, { atol: 2e-6, rtol: 1e-4 }, `${layout} rows`);
      // The sink of head 1 (8) leaves its outputs far smaller than head 0's.
      assert.ok(Math.abs(got[shape.valueDim]) < 0.1);
    });
  }
}
