/**
 * The native F32 product (matmul-f32.c) against the TypeScript one it replaces in prefill
 * (matVecBatchF32Activations): the same f32 bits for every shape its tiles and lane groups cut
 * differently (rows and vectors off the multiples of four and eight), on one thread and split.
 */
import assert from "node:assert/strict";
import { GgmlType } from "../../ggml-type.ts";
import { matVecBatchF32Activations } from "../matvec-f32-act.ts";
import { matVecBatch } from "../matvec.ts";
import { randoms } from "../../../tests/support/quant/dots.ts";
import { matMulF32Native, nativeThreads, setNativeKernels } from "./matvec-native.ts";
import { freshNativeBuild } from "../../../tests/support/native-build.ts";

const built = await freshNativeBuild();

function bytesOf(values: Float32Array, offset: number): Uint8Array {
  // At an odd byte offset, as a tensor can lie in a GGUF buffer.
  const b = new Uint8Array(values.byteLength + offset);
  b.set(new Uint8Array(values.buffer), offset);
  return b.subarray(offset);
}

Deno.test("native F32 product equals the TypeScript batch product's f32 bits", () => {
  const probe = new Float32Array(4);
  if (built === null) {
    return assert.equal(matMulF32Native(new Uint8Array(16), 2, 2, probe, 2, probe), false);
  }
  assert.ok(setNativeKernels(true, built));
  let seed = 1;
  for (const [rows, cols] of [[1, 1], [3, 7], [4, 8], [7, 64], [64, 64], [172, 64], [9, 300]]) {
    for (const n of [2, 3, 7, 8, 9, 16, 31, 33, 128]) {
      const w = randoms(rows * cols, seed++).map((x) => x * 3);
      const xs = randoms(n * cols, seed++).map((x) => x * 40);
      const want = new Float32Array(n * rows);
      matVecBatchF32Activations(GgmlType.F32, bytesOf(w, 0), rows, cols, xs, n, want);
      const got = new Float32Array(n * rows + 5).fill(7);
      assert.ok(matMulF32Native(bytesOf(w, seed % 4), rows, cols, xs, n, got));
      const at = `${rows}x${cols}, ${n} vectors`;
      assert.deepEqual(got.subarray(0, n * rows), want, at);
      assert.deepEqual([...got.subarray(n * rows)], [7, 7, 7, 7, 7], `${at}: wrote past n`);
      // matVecBatch routes F32 products of several vectors here.
      const routed = new Float32Array(n * rows);
      matVecBatch(GgmlType.F32, bytesOf(w, 0), rows, cols, xs, n, routed);
      assert.deepEqual(routed, want, `${at}: through matVecBatch`);
    }
  }
  assert.ok(nativeThreads() >= 1);
});
