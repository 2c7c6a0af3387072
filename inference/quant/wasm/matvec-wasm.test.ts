/**
 * The WASM kernels must give exactly the numbers of the integer-dot
 * references (tests/support/quant/, ggml's vec_dot arithmetic), for one
 * vector and for several, and reuse the weights they placed in WASM memory.
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
import { hardActivations, integerDots, randoms } from "../../../tests/support/quant/dots.ts";
import { matVec } from "../matvec.ts";
import {
  hasWasmKernel,
  matVecWasm,
  quantizeWasm,
  setWasmKernels,
  wasmKernelVariant,
} from "./matvec-wasm.ts";

/** Every block-quantized weight type. */
const TYPES = SUPPORTED_WEIGHT_TYPES.filter(isQuantWeightType);

Deno.test("this runtime runs the relaxed-SIMD build, for every block-quantized type", () => {
  // Deno's V8 validates relaxed SIMD; the plain build is tested below by force.
  assert.equal(wasmKernelVariant(), "relaxed");
  for (const type of TYPES) assert.ok(hasWasmKernel(type), ggmlTypeName(type));
  assert.ok(!hasWasmKernel(GgmlType.F16));
});

for (const variant of ["relaxed", "simd"] as const) {
  for (const type of TYPES) {
    const name = ggmlTypeName(type);
    for (const [rows, cols, n] of [[7, 512, 1], [5, 768, 6]]) {
      Deno.test(`WASM ${variant} ${name} ${rows}x${cols}, n=${n}: bit-equal to the integer dots`, () => {
        const w = quantize(type, randoms(rows * cols, rows + cols), cols);
        const a = quantizeActivations(type, randoms(n * cols, n), cols, n);
        const got = new Float32Array(n * rows);
        const want = new Float32Array(n * rows);
        setWasmKernels(true, variant);
        try {
          assert.ok(matVecWasm(type, w, rows, cols, a, got));
        } finally {
          setWasmKernels(true, "relaxed");
        }
        integerDots(type, w, rows, cols, a, want);
        assert.deepEqual(got, want);
      });
    }
  }
}

// Q4_0, Q8_0, Q4_K and Q6_K with n >= 2 take the grouped kernels: groups of four padded with
// zero vectors, one or two groups per row pass, block counts past whole fours, row tiles.
const GROUPED = [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K] as const;
for (const variant of ["relaxed", "simd"] as const) {
  for (const type of GROUPED) {
    const k = type === GgmlType.Q4_0 || type === GgmlType.Q8_0 ? 1 : 8;
    // 70 rows of 2,048 columns span two row tiles of each type.
    const shapes = [[3, 160, 2], [4, 224, 3], [5, 96, 9], [2, 64, 4], [3, 128, 8]]
      .map(([rows, cols, n]) => [rows, cols * k, n]).concat([[70, 2048, 13]]);
    for (const [rows, cols, n] of shapes) {
      const name = ggmlTypeName(type);
      Deno.test(`WASM ${variant} ${name} ${rows}x${cols}, n=${n}: grouped kernel bit-equal`, () => {
        const w = quantize(type, randoms(rows * cols, rows * cols), cols);
        const a = quantizeActivations(type, randoms(n * cols, n + 40), cols, n);
        const got = new Float32Array(n * rows);
        const want = new Float32Array(n * rows);
        setWasmKernels(true, variant);
        try {
          assert.ok(matVecWasm(type, w, rows, cols, a, got));
        } finally {
          setWasmKernels(true, "relaxed");
        }
        integerDots(type, w, rows, cols, a, want);
        assert.deepEqual(got, want);
      });
    }
  }
}

// The grouped Q4_0 and Q4_K kernels add 16 products per lane in i16 before widening: the
// largest sums they can meet (every weight level 15, every activation level +127 or -127,
// 30,480 in magnitude) must come out exact.
Deno.test("WASM grouped Q4_0 and Q4_K kernels keep the largest i16 partial sums exact", () => {
  const [rows, cols, n] = [3, 512, 8];
  // Rows of 7 with one -8 a block of 32: scale 1, so every other level is 7 + 8 = 15.
  const values = new Float32Array(rows * cols).map((_, i) => (i % 32 === 5 ? -8 : 7));
  // Vectors of +1 and of -1 round to levels +-127.
  const x = new Float32Array(n * cols).map((_, i) => (Math.floor(i / cols) % 2 ? -1 : 1));
  for (const type of [GgmlType.Q4_0, GgmlType.Q4_K] as const) {
    const w = quantize(type, values, cols);
    const a = quantizeActivations(type, x, cols, n);
    assert.equal(Math.max(...a.qs.subarray(0, n * cols).map(Math.abs)), 127);
    const got = new Float32Array(n * rows);
    const want = new Float32Array(n * rows);
    assert.ok(matVecWasm(type, w, rows, cols, a, got));
    integerDots(type, w, rows, cols, a, want);
    assert.deepEqual(got, want, ggmlTypeName(type));
    assert.ok(Math.abs(want[0]) > 1000, `${ggmlTypeName(type)}: ${want[0]}`);
  }
});

Deno.test("WASM Q4_0 grouped kernel takes levels at an unaligned byte offset", () => {
  const [rows, cols, n] = [3, 64, 5];
  const w = quantize(GgmlType.Q4_0, randoms(rows * cols, 51), cols);
  const a = quantizeActivations(GgmlType.Q4_0, randoms(n * cols, 52), cols, n);
  const host = new Int8Array(n * cols + 1);
  host.set(a.qs.subarray(0, n * cols), 1);
  const shifted = { ...a, qs: host.subarray(1) };
  const got = new Float32Array(n * rows);
  const want = new Float32Array(n * rows);
  assert.ok(matVecWasm(GgmlType.Q4_0, w, rows, cols, shifted, got));
  integerDots(GgmlType.Q4_0, w, rows, cols, a, want);
  assert.deepEqual(got, want);
});

Deno.test("WASM kernels read weights at a byte offset and keep extreme levels exact", () => {
  // Activations of one large value per block push levels to +-127; weights
  // sit 3 bytes into a larger buffer that also holds another matrix.
  const [rows, cols] = [4, 256];
  for (const type of TYPES) {
    const w = quantize(type, randoms(rows * cols, 11), cols);
    const host = new Uint8Array(w.length + 3 + 64);
    host.set(w, 3);
    const view = host.subarray(3, 3 + w.length);
    const x = randoms(cols, 12).map((v, i) => (i % 37 === 0 ? 50 * Math.sign(v) : v));
    const a = quantizeActivations(type, x, cols);
    const got = new Float32Array(rows);
    const want = new Float32Array(rows);
    assert.ok(matVecWasm(type, view, rows, cols, a, got));
    integerDots(type, view, rows, cols, a, want);
    assert.deepEqual(got, want, ggmlTypeName(type));
  }
});

Deno.test("WASM Q4_0/Q8_0/Q5_0/IQ4_NL convert every kind of f16 scale exactly, past groups of 4", () => {
  // Subnormal, signed zero, largest normal and infinite scales; 5 blocks per
  // row, so the last one runs outside the four-block loop.
  const scales = [0x0001, 0x03ff, 0x8001, 0x0000, 0x8000, 0x3c00, 0xbc01, 0x7bff, 0x0400, 0x7c00];
  const [rows, cols] = [8, 160];
  const blockBytes = {
    [GgmlType.Q4_0]: 18,
    [GgmlType.Q8_0]: 34,
    [GgmlType.Q5_0]: 22,
    [GgmlType.IQ4_NL]: 18,
  };
  for (const type of [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q5_0, GgmlType.IQ4_NL] as const) {
    const w = quantize(type, randoms(rows * cols, 31), cols);
    for (let b = 0, o = 0; o < w.length; b++, o += blockBytes[type]) {
      const h = scales[b % scales.length];
      w[o] = h & 255;
      w[o + 1] = h >> 8;
    }
    const a = quantizeActivations(type, randoms(cols, 32), cols);
    const got = new Float32Array(rows);
    const want = new Float32Array(rows);
    assert.ok(matVecWasm(type, w, rows, cols, a, got));
    integerDots(type, w, rows, cols, a, want);
    assert.deepEqual(got, want, ggmlTypeName(type));
  }
});

Deno.test("matVec dispatches to WASM and to the TypeScript kernels within one f32 step", () => {
  const [rows, cols] = [6, 1024];
  const w = quantize(GgmlType.Q4_0, randoms(rows * cols, 21), cols);
  const x = randoms(cols, 22);
  const viaWasm = new Float32Array(rows);
  const viaTs = new Float32Array(rows);
  matVec(GgmlType.Q4_0, w, rows, cols, x, viaWasm);
  setWasmKernels(false);
  try {
    assert.ok(!hasWasmKernel(GgmlType.Q4_0));
    matVec(GgmlType.Q4_0, w, rows, cols, x, viaTs);
  } finally {
    setWasmKernels(true);
  }
  for (let i = 0; i < rows; i++) {
    assert.ok(Math.abs(viaWasm[i] - viaTs[i]) <= Math.abs(viaTs[i]) * 2 ** -23, `row ${i}`);
  }
});

Deno.test("WASM MXFP4 takes every E8M0 exponent, subnormal halves included, exactly", () => {
  const [rows, cols] = [8, 1024]; // 256 blocks: exponent b for block b
  const w = quantize(GgmlType.MXFP4, randoms(rows * cols, 41), cols);
  for (let b = 0, o = 0; o < w.length; b++, o += 17) w[o] = b & 255;
  const a = quantizeActivations(GgmlType.MXFP4, randoms(cols, 42), cols);
  const got = new Float32Array(rows);
  const want = new Float32Array(rows);
  assert.ok(matVecWasm(GgmlType.MXFP4, w, rows, cols, a, got));
  integerDots(GgmlType.MXFP4, w, rows, cols, a, want);
  assert.deepEqual(got, want);
});

Deno.test("WASM activation rounding equals quantizeActivations bit for bit", () => {
  const cols = 512, n = 6;
  const x = hardActivations(cols, n);
  for (const type of [GgmlType.Q4_0, GgmlType.Q4_K] as const) {
    const want = quantizeActivations(type, x, cols, n);
    const got = quantizeWasm(type, x, cols, n, emptyActivations());
    assert.ok(got);
    assert.equal(got.form, want.form);
    assert.deepEqual(got.qs, want.qs);
    // Array.from: a NaN scale may differ in its sign bit (which NaN x86 makes in JS), not more.
    assert.deepEqual(Array.from(got.d), Array.from(want.d));
    assert.deepEqual(got.sums16, want.sums16);
  }
});
