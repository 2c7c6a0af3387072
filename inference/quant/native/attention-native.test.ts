/**
 * A step's attention over f16 caches runs in native code where the library is built
 * (attention.c, attentionRowsNative): every output must equal attendRow's TypeScript loops
 * bit for bit, for grouped-query heads, head sizes off the vector widths, sliding windows,
 * rings and sinks, one row or many over several caches. The native kernel rounds each query to
 * f16 values itself, as attentionBlock does before attendRow: attendRow gets them rounded.
 */
import assert from "node:assert/strict";
import { attendRow } from "../../attention.ts";
import type { ModelConfig } from "../../model-config.ts";
import { randoms } from "../../../tests/support/quant/dots.ts";
import { attentionRowsNative, nativeAttention, roundF16Native } from "./attention-native.ts";
import { setNativeKernels } from "./matvec-native.ts";
import { freshNativeBuild } from "../../../tests/support/native-build.ts";

const built = await freshNativeBuild();

interface Case {
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  pos: number;
  window?: number;
  ring?: number;
  sinks?: boolean;
  spread: number; // scales the queries: large values make a peaked softmax
}

const CASES: Case[] = [
  { heads: 16, kvHeads: 4, headDim: 128, valueDim: 128, pos: 161, spread: 1 },
  { heads: 8, kvHeads: 8, headDim: 64, valueDim: 64, pos: 0, spread: 1 },
  {
    heads: 6,
    kvHeads: 2,
    headDim: 12,
    valueDim: 40,
    pos: 30,
    window: 5,
    ring: 7,
    sinks: true,
    spread: 4,
  },
  { heads: 4, kvHeads: 1, headDim: 256, valueDim: 256, pos: 70, window: 16, spread: 20 },
  { heads: 4, kvHeads: 2, headDim: 96, valueDim: 96, pos: 9, spread: 2 },
  // stories260K's heads: eight values, one f32 vector of them; 130 positions, whole vectors of
  // softmax weights and a tail.
  { heads: 8, kvHeads: 4, headDim: 8, valueDim: 8, pos: 130, spread: 3 },
  // Sinks above every score: the sink sets the softmax's max.
  { heads: 2, kvHeads: 1, headDim: 64, valueDim: 64, pos: 20, sinks: true, spread: 0.02 },
  // A lone row over 256 positions or more goes to both threads, half its heads each: at a kv
  // head's bound, inside one kv head's group (one kv head, sinks), and over a window.
  { heads: 16, kvHeads: 4, headDim: 128, valueDim: 128, pos: 700, spread: 1 },
  { heads: 4, kvHeads: 1, headDim: 64, valueDim: 64, pos: 300, sinks: true, spread: 2 },
  { heads: 6, kvHeads: 3, headDim: 32, valueDim: 48, pos: 600, window: 290, spread: 1 },
];

/** attendRow (TypeScript) or attentionRowsNative's one row, reading q at 5, writing att at 3. */
function attend(c: Case, native: boolean): Float32Array {
  assert.equal(setNativeKernels(native, native ? built! : undefined), native);
  const config = { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, valueDim: c.valueDim };
  const rows = c.ring ?? c.pos + 1;
  const keys = new Float16Array(randoms(rows * c.kvHeads * c.headDim, 3));
  const values = new Float16Array(randoms(rows * c.kvHeads * c.valueDim, 4));
  const q = randoms(c.heads * c.headDim + 5, 5).map((x) => x * c.spread);
  const sinks = c.sinks ? randoms(c.heads, 6) : undefined;
  const att = new Float32Array(c.heads * c.valueDim + 3).fill(7);
  const window = c.window ?? 0, ring = c.ring ?? 0;
  if (native) {
    const start = window > 0 ? Math.max(0, c.pos - window + 1) : 0;
    const row = { keys, values, start, pos: c.pos, ring };
    const scale = 1 / Math.sqrt(c.headDim);
    const [qRow, out] = [q.subarray(5), att.subarray(3)];
    assert.ok(attentionRowsNative(config, scale, sinks, 1, qRow, 0, out, 0, () => row));
    return att;
  }
  const scores = new Float32Array(c.pos + 1);
  const qf16 = new Float32Array(new Float16Array(q));
  attendRow(
    config as ModelConfig,
    qf16,
    5,
    keys,
    values,
    c.pos,
    scores,
    att,
    3,
    window,
    sinks,
    ring,
  );
  return att;
}

for (const c of CASES) {
  const what = `${c.heads}/${c.kvHeads} heads of ${c.headDim}/${c.valueDim} at ${c.pos}` +
    (c.window ? `, window ${c.window}` : "") + (c.ring ? `, ring ${c.ring}` : "") +
    (c.sinks ? ", sinks" : "");
  Deno.test(`native attention over an f16 cache equals the TypeScript loops: ${what}`, () => {
    if (built === null) return assert.equal(nativeAttention(), false);
    const native = attend(c, true);
    const ts = attend(c, false);
    setNativeKernels(true, built);
    // The offsets outside the row are untouched, and the row is not trivially zero.
    assert.deepEqual(native.subarray(0, 3), new Float32Array([7, 7, 7]));
    assert.ok(native.some((x, i) => i >= 3 && x !== 0));
    assert.deepEqual(native, ts);
  });
}

/**
 * attendRow (TypeScript) for each row in turn, row t's query at q0[t * qStride] rounded to f16
 * values first (as attentionBlock rounds it), its output at [t * attStride].
 */
function attendRowsTs(
  config: ModelConfig,
  q0: Float32Array,
  qStride: number,
  attStride: number,
  sinks: Float32Array | undefined,
  rows: { keys: Float16Array; values: Float16Array; pos: number; window: number; ring: number }[],
): Float32Array {
  const qf16 = new Float32Array(new Float16Array(q0));
  const want = new Float32Array(rows.length * attStride);
  rows.forEach((r, t) => {
    const scores = new Float32Array(r.pos + 1);
    attendRow(
      config,
      qf16,
      t * qStride,
      r.keys,
      r.values,
      r.pos,
      scores,
      want,
      t * attStride,
      r.window,
      sinks,
      r.ring,
    );
  });
  return want;
}

Deno.test("native attention over many rows (two threads, one cache per row) equals attendRow row by row", () => {
  if (built === null) return assert.equal(nativeAttention(), false);
  const config = { heads: 8, kvHeads: 2, headDim: 64, valueDim: 64 } as ModelConfig;
  const kDim = 2 * 64;
  // Five rows over three caches: a prefill's rows share one, a batch's sequences have their own;
  // one cache is a ring.
  const caches = [40, 12, 9].map((rows, i) => ({
    keys: new Float16Array(randoms(rows * kDim, 20 + i)),
    values: new Float16Array(randoms(rows * kDim, 30 + i)),
  }));
  const rows = [
    { cache: 0, start: 0, pos: 37, ring: 0 },
    { cache: 0, start: 0, pos: 38, ring: 0 },
    { cache: 1, start: 0, pos: 11, ring: 0 },
    { cache: 2, start: 14, pos: 20, ring: 9 },
    { cache: 0, start: 30, pos: 39, ring: 0 },
  ];
  const n = rows.length, qStride = 8 * 64, attStride = 8 * 64;
  const q0 = randoms(n * qStride, 7).map((x) => x * 3), q = q0.slice();
  const sinks = randoms(8, 8);
  assert.ok(setNativeKernels(true, built));
  const got = new Float32Array(n * attStride);
  assert.ok(
    attentionRowsNative(config, 1 / 8, sinks, n, q, qStride, got, attStride, (t) => ({
      ...caches[rows[t].cache],
      ...rows[t],
    })),
  );
  setNativeKernels(false);
  const want = attendRowsTs(
    config,
    q0,
    qStride,
    attStride,
    sinks,
    rows.map((r) => ({
      ...caches[r.cache],
      pos: r.pos,
      // attendRow takes the window as a size: positions (pos - window, pos].
      window: r.start > 0 ? r.pos - r.start + 1 : 0,
      ring: r.ring,
    })),
  );
  setNativeKernels(true, built);
  assert.ok(got.some((x) => x !== 0));
  assert.deepEqual(got, want);
});

// A prompt chunk's rows share their cache: attention.c takes them in blocks, each key and value
// row read once for the block, positions in runs (32 for values of 128), the sums carried from
// run to run. Every output must still be attendRow's: whole heads of 128 (the 128-wide sums)
// and odd ones (42 values: the 16-, 8- and 1-wide sums), a sliding window over a ring (rows
// whose windows leave gaps in a block's positions), chunks that start past position 0 and at
// it.
for (
  const c of [
    { headDim: 128, valueDim: 128, first: 150, n: 23, window: 0, ring: 0 },
    { headDim: 12, valueDim: 42, first: 0, n: 19, window: 0, ring: 0 },
    { headDim: 64, valueDim: 64, first: 90, n: 17, window: 6, ring: 110 },
  ]
) {
  const what = `${c.n} rows from ${c.first}, heads of ${c.headDim}/${c.valueDim}` +
    (c.window ? `, window ${c.window} over a ring of ${c.ring}` : "");
  Deno.test(`native attention over a prompt chunk's rows (blocks of one cache) equals attendRow: ${what}`, () => {
    if (built === null) return assert.equal(nativeAttention(), false);
    const heads = 8, kvHeads = 2;
    const config = { heads, kvHeads, headDim: c.headDim, valueDim: c.valueDim } as ModelConfig;
    const rowsHeld = c.ring || c.first + c.n;
    const keys = new Float16Array(randoms(rowsHeld * kvHeads * c.headDim, 41));
    const values = new Float16Array(randoms(rowsHeld * kvHeads * c.valueDim, 42));
    const qStride = heads * c.headDim, attStride = heads * c.valueDim;
    const q0 = randoms(c.n * qStride, 43).map((x) => x * 2), q = q0.slice();
    const startOf = (pos: number) => c.window > 0 ? Math.max(0, pos - c.window + 1) : 0;
    assert.ok(setNativeKernels(true, built));
    const got = new Float32Array(c.n * attStride);
    const row = (t: number) => {
      const pos = c.first + t;
      return { keys, values, start: startOf(pos), pos, ring: c.ring };
    };
    const scale = 1 / Math.sqrt(c.headDim); // attendRow's, with no attentionScale
    assert.ok(attentionRowsNative(config, scale, undefined, c.n, q, qStride, got, attStride, row));
    setNativeKernels(false);
    const want = attendRowsTs(
      config,
      q0,
      qStride,
      attStride,
      undefined,
      Array.from({ length: c.n }, (_, t) => ({
        keys,
        values,
        pos: c.first + t,
        window: c.window,
        ring: c.ring,
      })),
    );
    setNativeKernels(true, built);
    assert.ok(got.some((x) => x !== 0));
    assert.deepEqual(got, want);
  });
}

// The softmax weights' f16 rounding (vectorized where the CPU has AVX-512) must be
// Float16Array's: ties to even between neighbouring halves, a hair either side of a tie,
// subnormal halves, underflow to zero, overflow to infinity, signed zeros and NaN.
Deno.test("native f16 rounding of the softmax weights equals Float16Array's", () => {
  if (built === null) return;
  setNativeKernels(true, built);
  const halves = new Float16Array(
    new Uint16Array(Array.from({ length: 0x7c00 }, (_, i) => i)).buffer,
  );
  const xs: number[] = [
    0,
    -0,
    NaN,
    65504,
    65520,
    65519.99,
    1e6,
    1e-300,
    2 ** -25,
    2 ** -25 * 1.0001,
  ];
  for (let i = 0; i + 1 < halves.length; i += 7) {
    const a = halves[i], b = halves[i + 1], mid = (a + b) / 2;
    xs.push(a, mid, mid * (1 + 2 ** -52), mid * (1 - 2 ** -52), -mid);
  }
  xs.push(...randoms(4096, 9).map((v) => v * 2 ** ((v * 1e6) % 30 | 0)));
  const got = Float64Array.from(xs);
  assert.ok(roundF16Native(got));
  const want = Array.from(Float16Array.from(xs), Number);
  assert.deepEqual(Array.from(got), want);
});
