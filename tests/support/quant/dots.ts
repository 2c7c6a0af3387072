/**
 * What the kernel tests share: seeded values with the spread of real weights
 * and activations, and the integer block dots of ggml (dot-q-0.ts, dot-k.ts)
 * for any block-quantized type, the reference the fast kernels are pinned to.
 */
import { GgmlType } from "../../../inference/ggml-type.ts";
import type { Activations } from "../../../inference/quant/activations.ts";
import { dotQ4_K, dotQ5_K, dotQ6_K } from "./dot-k.ts";
import { dotQ4_0, dotQ8_0 } from "./dot-q-0.ts";

/** Deterministic values around ±1 with a heavier tail (an LCG, seeded). */
export function randoms(n: number, seed: number): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  return new Float32Array(n).map(() => r() * 2 + r() * r());
}

/** out[v * rows + r] = ggml's integer dot of row r of `w` with activation vector v. */
export function integerDots(
  type: GgmlType,
  w: Uint8Array,
  rows: number,
  cols: number,
  a: Activations,
  out: Float32Array,
): void {
  const ws = new Int8Array(w.buffer, w.byteOffset, w.length);
  if (type === GgmlType.Q8_0) dotQ8_0(w, ws, rows, cols, a, out);
  else if (type === GgmlType.Q4_0) dotQ4_0(w, rows, cols, a, out);
  else if (type === GgmlType.Q4_K) dotQ4_K(w, rows, cols, a, out);
  else if (type === GgmlType.Q5_K) dotQ5_K(w, rows, cols, a, out);
  else dotQ6_K(w, ws, rows, cols, a, out);
}
