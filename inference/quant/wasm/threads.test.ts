/**
 * Two threads (threads.ts) split a product by rows: the outputs must equal
 * the integer-dot references bit for bit, for one vector and for the grouped
 * Q4_0 kernel, and the helper must stop cleanly (no leaked worker).
 */
import assert from "node:assert/strict";
import { GgmlType, ggmlTypeName, type QuantWeightType } from "../../ggml-type.ts";
import { quantizeActivations } from "../activations.ts";
import { quantize } from "../codec.ts";
import { integerDots } from "../../../tests/support/quant/dots.ts";
import { matVecWasm, setWasmThreads } from "./matvec-wasm.ts";

function randoms(n: number, seed: number): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  return new Float32Array(n).map(() => r() * 2 + r() * r());
}

Deno.test("two WASM threads give the integer dots bit for bit, then stop", async () => {
  // 512 x 2048 is past the size below which products stay on one thread.
  const [rows, cols] = [512, 2048];
  assert.ok(await setWasmThreads(true), "a worker with shared memory starts in Deno");
  try {
    // Q5_1 reads its activation sums as f64, the others as i32 or not at all.
    const cases = [[GgmlType.Q4_0, 1], [GgmlType.Q4_0, 7], [GgmlType.Q8_0, 1], [GgmlType.Q6_K, 1]];
    cases.push([GgmlType.Q5_1, 3], [GgmlType.Q3_K, 1], [GgmlType.IQ4_XS, 1], [GgmlType.MXFP4, 2]);
    for (const [type, n] of cases) {
      const w = quantize(type, randoms(rows * cols, 3 + n), cols);
      const a = quantizeActivations(type, randoms(n * cols, 5 + n), cols, n);
      const got = new Float32Array(n * rows);
      const want = new Float32Array(n * rows);
      assert.ok(matVecWasm(type, w, rows, cols, a, got));
      integerDots(type as QuantWeightType, w, rows, cols, a, want);
      assert.deepEqual(got, want, `${ggmlTypeName(type)} n=${n}`);
    }
  } finally {
    assert.equal(await setWasmThreads(false), false);
  }
});
