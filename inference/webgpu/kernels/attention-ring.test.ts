// A sliding-window layer's cache as a ring (position p at row p % ring) gives the numbers of a
// cache holding every position, bit for bit, in both layouts and both row addressings, with
// steps of 1, window - 1 and window + 3 rows wrapping it many times over.
import assert from "node:assert/strict";
import {
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
  uploadU32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import {
  bindAttention,
  bindAttentionRows,
  bindKvWrite,
  bindKvWriteRows,
  createKvCache,
} from "./attention.ts";

const shape = { heads: 4, kvHeads: 2, headDim: 8, valueDim: 8 };
const WINDOW = 8;
const SIZES = [1, WINDOW - 1, WINDOW + 3];
const RING = WINDOW + 11;
const TOTAL = 90;
const kDim = shape.kvHeads * shape.headDim, vDim = shape.kvHeads * shape.valueDim;
const qDim = shape.heads * shape.headDim, oDim = shape.heads * shape.valueDim;

/** [pos0, n] of each step over TOTAL positions. */
function steps(): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0, i = 0; at < TOTAL; i++) {
    const n = Math.min(SIZES[i % SIZES.length], TOTAL - at);
    out.push([at, n]);
    at += n;
  }
  return out;
}

for (const layout of ["workgroup", "lane"] as const) {
  Deno.test(`attention ring (${layout}): one sequence through a ring of ${RING} equals the whole cache`, async () => {
    const { device } = await createTestGpu();
    const k = randomF32(TOTAL * kDim, 11), v = randomF32(TOTAL * vDim, 12);
    const q = randomF32(TOTAL * qDim, 13, 2);
    const [kb, vb, qb] = [uploadF32(device, k), uploadF32(device, v), uploadF32(device, q)];
    /** Every step's attention output, through a cache of `rows` rows (ring 0: p at row p). */
    const run = async (rows: number, ring: number) => {
      const cache = createKvCache(device, { layers: 1, ctxSize: rows, ...shape });
      const caches = { keys: cache.keys[0], values: cache.values[0] };
      const out = createF32(device, TOTAL * oDim);
      const write = bindKvWrite(device, { k: kb, v: vb, ...caches }, {
        n: 1,
        kDim,
        vDim,
        pos0: 0,
        ring,
      });
      const base = { ...shape, window: WINDOW, ring };
      const att = bindAttention(
        device,
        { q: qb, out, ...caches },
        { n: 1, pos0: 0, ...base },
        layout,
      );
      for (const [pos0, n] of steps()) {
        write.update({ n, kDim, vDim, pos0, kOffset: pos0 * kDim, vOffset: pos0 * vDim, ring });
        att.update({ n, pos0, qOffset: pos0 * qDim, outOffset: pos0 * oDim, ...base });
        submitKernels(device, [write, att]);
      }
      return await readF32(device, out, TOTAL * oDim);
    };
    const ringOut = await run(RING, RING);
    assert.deepEqual(ringOut, await run(TOTAL, 0));
    // A ring one row short of window + 11 loses the first rows' window in the 11-row steps.
    assert.notDeepEqual(await run(RING - 2, RING - 2), ringOut);
  });

  Deno.test(`attention ring (${layout}, rows): two slots' stacked rows through rings equal whole caches`, async () => {
    const { device } = await createTestGpu();
    const data = [0, 1].map((s) => ({
      k: randomF32(TOTAL * kDim, 21 + s),
      v: randomF32(TOTAL * vDim, 23 + s),
      q: randomF32(TOTAL * qDim, 25 + s, 2),
    }));
    const run = async (ctx: number, ring: number) => {
      const cache = createKvCache(device, { layers: 1, ctxSize: 2 * ctx, ...shape });
      const caches = { keys: cache.keys[0], values: cache.values[0] };
      const got = [0, 1].map(() => new Float32Array(TOTAL * oDim));
      for (const [pos0, n] of steps()) {
        // Slot 1 takes the step's rows first, then slot 0: each row names its own slot.
        const order = [1, 0];
        const table = new Uint32Array(4 * n);
        const pick = (key: "k" | "v" | "q", width: number) => {
          const x = new Float32Array(2 * n * width);
          order.forEach((s, i) =>
            x.set(data[s][key].subarray(pos0 * width, (pos0 + n) * width), i * n * width)
          );
          return uploadF32(device, x);
        };
        order.forEach((s, i) => {
          for (let t = 0; t < n; t++) table.set([s, pos0 + t], 2 * (i * n + t));
        });
        const rows = uploadU32(device, table);
        const out = createF32(device, 2 * n * oDim);
        const write = bindKvWriteRows(device, {
          rows,
          k: pick("k", kDim),
          v: pick("v", vDim),
          ...caches,
        }, { n: 2 * n, kDim, vDim, ctx, ring });
        const att = bindAttentionRows(
          device,
          { rows, q: pick("q", qDim), out, ...caches },
          { n: 2 * n, ctx, ring, window: WINDOW, ...shape },
          layout,
        );
        submitKernels(device, [write, att]);
        const o = await readF32(device, out, 2 * n * oDim);
        order.forEach((s, i) =>
          got[s].set(o.subarray(i * n * oDim, (i + 1) * n * oDim), pos0 * oDim)
        );
      }
      return got;
    };
    assert.deepEqual(await run(RING, RING), await run(TOTAL, 0));
  });
}
