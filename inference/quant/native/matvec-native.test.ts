/**
 * The native build of the kernels must give exactly the WASM build's numbers (which equal the
 * integer-dot references, ../wasm/matvec-wasm.test.ts): one vector, grouped vectors, row tiles
 * and the split across two threads, for every block-quantized type.
 */
import assert from "node:assert/strict";
import {
  GgmlType,
  ggmlTypeName,
  isQuantWeightType,
  SUPPORTED_WEIGHT_TYPES,
} from "../../ggml-type.ts";
import { emptyActivations, quantizeActivations } from "../activations.ts";
import { quantize } from "../codec.ts";
import { hardActivations, randoms } from "../../../tests/support/quant/dots.ts";
import { matVecWasm } from "../wasm/matvec-wasm.ts";
import { matVecNative, nativeKernels, quantizeNative, setNativeKernels } from "./matvec-native.ts";
import { freshNativeBuild } from "../../../tests/support/native-build.ts";

const TYPES = SUPPORTED_WEIGHT_TYPES.filter(isQuantWeightType);

const built = await freshNativeBuild();

Deno.test("the native kernels load from a fresh build (or, with no compiler, stay off)", () => {
  if (built === null) {
    assert.equal(setNativeKernels(true, "/nonexistent/grove-kernels.so"), false);
    return;
  }
  assert.ok(setNativeKernels(true, built));
  assert.ok(nativeKernels());
});

for (const type of TYPES) {
  const name = ggmlTypeName(type);
  // n = 1 (K-quant rows of an even and an odd count of super-blocks: the x86 rows take them
  // two at a time) and 6 (grouped where the type has a grouped kernel), and 70 x 2048 x 13:
  // two row tiles, and big enough to split across the two threads.
  Deno.test(`native ${name}: bit-equal to the WASM kernels`, () => {
    if (built === null) return assert.equal(nativeKernels(), false);
    setNativeKernels(true, built);
    const shapes = [[7, 512, 1], [9, 1280, 1], [5, 768, 6], [70, 2048, 13], [600, 2048, 1]];
    for (const [rows, cols, n] of shapes) {
      const w = quantize(type, randoms(rows * cols, rows + cols), cols);
      const a = quantizeActivations(type, randoms(n * cols, n), cols, n);
      const got = new Float32Array(n * rows);
      const want = new Float32Array(n * rows);
      assert.ok(matVecNative(type, w, rows, cols, a, got));
      assert.ok(matVecWasm(type, w, rows, cols, a, want));
      assert.deepEqual(got, want, `${name} ${rows}x${cols} n=${n}`);
    }
  });
}

// Q4_0, Q4_K and Q5_K from eight vectors on take eight per group (their _x8 kernels), and from
// sixteen on sixteen (_x16, where the CPU has AVX-512 VNNI): whole groups, padded ones, block
// counts past whole fours (Q4_0 and Q4_K: past a column chunk), row tiles, the two threads.
const GROUPED_SHAPES = {
  // 2336 columns: past 64 blocks the eight-vector kernel takes column chunks, here 64 + 9, over
  // tiles of 16 rows and a last short one.
  [GgmlType.Q4_0]: [
    [3, 160, 8],
    [5, 96, 17],
    [4, 224, 16],
    [70, 2048, 9],
    [70, 2048, 40],
    [67, 2336, 11],
  ],
  [GgmlType.Q4_K]: [[3, 256, 8], [5, 1280, 17], [4, 512, 16], [70, 2048, 9], [130, 1536, 40]],
  [GgmlType.Q5_K]: [[3, 256, 8], [5, 1280, 17], [4, 512, 16], [70, 2048, 9], [130, 1536, 40]],
};
for (const type of [GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K] as const) {
  const name = ggmlTypeName(type);
  Deno.test(`native ${name} eight- and sixteen-vector kernels: bit-equal to the WASM kernels`, () => {
    if (built === null) return assert.equal(nativeKernels(), false);
    setNativeKernels(true, built);
    for (const [rows, cols, n] of GROUPED_SHAPES[type]) {
      const w = quantize(type, randoms(rows * cols, rows * cols), cols);
      const a = quantizeActivations(type, randoms(n * cols, n + 40), cols, n);
      const got = new Float32Array(n * rows);
      const want = new Float32Array(n * rows);
      assert.ok(matVecNative(type, w, rows, cols, a, got));
      assert.ok(matVecWasm(type, w, rows, cols, a, want));
      assert.deepEqual(got, want, `${name} ${rows}x${cols} n=${n}`);
    }
  });
}

Deno.test("native activation rounding equals quantizeActivations bit for bit", () => {
  if (built === null) return assert.equal(nativeKernels(), false);
  setNativeKernels(true, built);
  // 3,072 values on one thread; 20,736 shared with the helper thread in rows of 1,024 values,
  // the last a quarter row.
  for (const [cols, n] of [[512, 6], [2304, 9]]) {
    const x = hardActivations(cols, n);
    for (const type of [GgmlType.Q4_0, GgmlType.Q4_K] as const) {
      const want = quantizeActivations(type, x, cols, n);
      const got = quantizeNative(type, x, cols, n, emptyActivations());
      assert.ok(got);
      assert.equal(got.form, want.form);
      assert.deepEqual(got.qs.subarray(0, n * cols), want.qs.subarray(0, n * cols));
      // Array.from: a NaN scale may differ in its sign bit (which NaN x86 makes in JS), not more.
      assert.deepEqual(Array.from(got.d), Array.from(want.d));
      assert.deepEqual(got.sums16, want.sums16);
    }
  }
});
