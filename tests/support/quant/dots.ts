/**
 * What the kernel tests share: seeded values with the spread of real weights
 * and activations, and the integer block dots of ggml (dot-q-0.ts, dot-k.ts)
 * for any block-quantized type, the reference the fast kernels are pinned to.
 */
import { GgmlType, type QuantWeightType } from "../../../inference/ggml-type.ts";
import type { Activations } from "../../../inference/quant/activations.ts";
import { dotQ4_K, dotQ5_K, dotQ6_K } from "./dot-k.ts";
import { dotQ4_0, dotQ8_0 } from "./dot-q-0.ts";
import { dotQ5_0, dotQ5_1 } from "./dot-q5.ts";
import { dotIq4Nl, dotIq4Xs, dotMxfp4 } from "./dot-iq4.ts";
import { dotQ2_K, dotQ3_K } from "./dot-k-low.ts";

/** Deterministic values around ±1 with a heavier tail (an LCG, seeded). */
export function randoms(n: number, seed: number): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  return new Float32Array(n).map(() => r() * 2 + r() * r());
}

/**
 * `n` rows of `cols` random values with what rounding to int8 blocks must survive: halves at
 * every scale (ties), an all-zero block of each size, extremes, subnormals, NaN, infinities and
 * negative zeros, and a block of exact ties. Needs n * cols >= 2336.
 */
export function hardActivations(cols: number, n: number): Float32Array {
  const x = randoms(n * cols, 77);
  for (let i = 0; i < 64; i++) x[i] = (i - 32) * 0.5;
  x.fill(0, 512, 768);
  x[800] = 3e38;
  x[801] = -3e38;
  x[900] = 1e-42;
  x[1000] = NaN;
  x[1300] = Infinity;
  x[1600] = -Infinity;
  x[2000] = 70000;
  x.fill(-0, 2048, 2304);
  // A block whose scale is exactly 1 (amax 127), its other values halves: every level a tie,
  // which q8_0 rounds away from zero and q8_K to even.
  x[2304] = 127;
  for (let j = 2305; j < 2336; j++) x[j] = j - 2320 + 0.5;
  return x;
}

type IntegerDot = (
  w: Uint8Array,
  ws: Int8Array, // the same bytes as int8
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
) => void;

const DOTS: Record<QuantWeightType, IntegerDot> = {
  [GgmlType.Q8_0]: dotQ8_0,
  [GgmlType.Q4_0]: (w, _ws, rows, cols, a, out) => dotQ4_0(w, rows, cols, a, out),
  [GgmlType.Q4_K]: (w, _ws, rows, cols, a, out) => dotQ4_K(w, rows, cols, a, out),
  [GgmlType.Q5_K]: (w, _ws, rows, cols, a, out) => dotQ5_K(w, rows, cols, a, out),
  [GgmlType.Q6_K]: dotQ6_K,
  [GgmlType.Q5_0]: (w, _ws, rows, cols, a, out) => dotQ5_0(w, rows, cols, a, out),
  [GgmlType.Q5_1]: (w, _ws, rows, cols, a, out) => dotQ5_1(w, rows, cols, a, out),
  [GgmlType.Q2_K]: (w, _ws, rows, cols, a, out) => dotQ2_K(w, rows, cols, a, out),
  [GgmlType.Q3_K]: (w, _ws, rows, cols, a, out) => dotQ3_K(w, rows, cols, a, out),
  [GgmlType.IQ4_NL]: (w, _ws, rows, cols, a, out) => dotIq4Nl(w, rows, cols, a, out),
  [GgmlType.IQ4_XS]: (w, _ws, rows, cols, a, out) => dotIq4Xs(w, rows, cols, a, out),
  [GgmlType.MXFP4]: (w, _ws, rows, cols, a, out) => dotMxfp4(w, rows, cols, a, out),
};

/** out[v * rows + r] = ggml's integer dot of row r of `w` with activation vector v. */
export function integerDots(
  type: QuantWeightType,
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  DOTS[type](w, new Int8Array(w.buffer, w.byteOffset, w.length), rows, cols, a, out);
}
