/**
 * Products of one input by several matrices (q, k and v; gate and up) round the input once
 * (matVecBatch's `sameInput`): each must equal a product that rounded it anew, for every
 * kernel path's vector counts, and an input that is not the last one is rounded anew anyway.
 */
import assert from "node:assert/strict";
import { GgmlType } from "../ggml-type.ts";
import { quantize } from "./codec.ts";
import { matVecBatch } from "./matvec.ts";
import { randoms } from "../../tests/support/quant/dots.ts";

const cols = 256, rows = 24;

for (const n of [1, 3, 8, 17]) {
  Deno.test(`matVecBatch with sameInput equals fresh products (n = ${n})`, () => {
    const types = [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q4_0];
    const mats = types.map((t, i) => quantize(t, randoms(rows * cols, 10 + i), cols));
    const xs = randoms(n * cols, 3);
    const fresh = types.map((t, i) => {
      const out = new Float32Array(n * rows);
      matVecBatch(t, mats[i], rows, cols, xs, n, out);
      return out;
    });
    const shared = types.map((t, i) => {
      const out = new Float32Array(n * rows);
      matVecBatch(t, mats[i], rows, cols, xs, n, out, i > 0);
      return out;
    });
    assert.deepEqual(shared, fresh);
    // Another input claimed "same" is not the last one rounded: it is rounded anew.
    const other = randoms(n * cols, 4);
    const want = new Float32Array(n * rows), got = new Float32Array(n * rows);
    matVecBatch(GgmlType.Q4_0, mats[0], rows, cols, other, n, want);
    matVecBatch(GgmlType.Q4_0, mats[0], rows, cols, xs, n, got);
    matVecBatch(GgmlType.Q4_0, mats[0], rows, cols, other, n, got, true);
    assert.deepEqual(got, want);
  });
}
