import assert from "node:assert/strict";
import { GgmlType } from "../ggml-type.ts";
import { dequantize, dequantizeRow, quantize } from "./codec.ts";
import { fp16ToF32 } from "./fp16.ts";

Deno.test("Q4_0 known block: nibble j is value j, nibble j+16 the high half; (q - 8) * d", () => {
  const block = new Uint8Array(18);
  block[0] = 0x00; // d = 0.5 (fp16 0x3800)
  block[1] = 0x38;
  for (let j = 0; j < 16; j++) block[2 + j] = j | ((15 - j) << 4);
  const out = dequantize(GgmlType.Q4_0, block, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(out[j], (j - 8) * 0.5);
    assert.equal(out[j + 16], (7 - j) * 0.5);
  }
});

Deno.test("Q8_0 known block: signed int8 quants times the f16 scale, at an offset", () => {
  const block = new Uint8Array(34);
  block[0] = 0x00; // d = 0.25 (fp16 0x3400)
  block[1] = 0x34;
  const q = new Int8Array(block.buffer, 2, 32);
  for (let j = 0; j < 32; j++) q[j] = j % 2 ? -128 + j : 127 - j;
  const out = new Float32Array(40).fill(9);
  dequantizeRow(GgmlType.Q8_0, block, 32, out, 5);
  assert.equal(out[4], 9);
  for (let j = 0; j < 32; j++) assert.equal(out[5 + j], q[j] * 0.25);
  assert.equal(out[37], 9);
});

Deno.test("Q8_0 quantize: amax maps to 127 and halves round away from zero", () => {
  const x = new Float32Array(32);
  for (let j = 0; j < 32; j++) x[j] = j - 16;
  x[0] = -127; // d = 127 / 127 = 1 exactly
  x[1] = 2.5;
  x[2] = -2.5;
  x[3] = 0.4999;
  const bytes = quantize(GgmlType.Q8_0, x, 32);
  assert.deepEqual([...bytes.subarray(0, 2)], [0x00, 0x3c]);
  const q = new Int8Array(bytes.buffer, 2, 32);
  assert.equal(q[0], -127);
  assert.equal(q[1], 3);
  assert.equal(q[2], -3);
  assert.equal(q[3], 0);
  for (let j = 4; j < 32; j++) assert.equal(q[j], j - 16);
});

Deno.test("Q4_0 quantize: the largest-magnitude value maps to -8 and ggml truncates x + 8.5", () => {
  const x = new Float32Array(32);
  x[0] = -8; // max = -8 -> d = 1, id = 1
  x[1] = 0.5; // 9.0 -> 9 (a half goes up)
  x[2] = -0.5; // 8.0 -> 8
  x[3] = 7.9; // 16.4 -> 16 -> clamped to 15
  x[4] = 3.49; // 11.99 -> 11
  x[16] = 1; // high nibble of byte 0
  const bytes = quantize(GgmlType.Q4_0, x, 32);
  assert.deepEqual([...bytes.subarray(0, 2)], [0x00, 0x3c]);
  assert.equal(bytes[2], 0 | (9 << 4));
  assert.equal(bytes[3], 9 | (8 << 4));
  assert.equal(bytes[4], 8 | (8 << 4));
  assert.equal(bytes[5], 15 | (8 << 4));
  assert.equal(bytes[6], 11 | (8 << 4));
  // A positive maximum gives a negative d, so it still lands on level 0.
  const y = new Float32Array(32).fill(1);
  y[7] = 4;
  const pb = quantize(GgmlType.Q4_0, y, 32);
  assert.equal(fp16ToF32(pb[0] | (pb[1] << 8)), -0.5);
  assert.equal(pb[2 + 7] & 15, 0);
});

function gaussian(n: number, seed: number, scale: number): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return new Float32Array(n).map(() => (r() + r() + r() + r() - 2) * scale);
}

Deno.test("Q8_0 and Q4_0 round trips stay within half a step (one step at Q4_0's clamp)", () => {
  const x = gaussian(32 * 64, 3, 2);
  // The stored f16 scale is off by up to 2^-11 relative, over up to `levels` steps.
  const cases = [[GgmlType.Q8_0, 127, 0.5 + 127 / 2048], [GgmlType.Q4_0, 8, 1 + 8 / 2048]];
  for (const [type, levels, slack] of cases) {
    const back = dequantize(type, quantize(type, x, 64), x.length);
    for (let b = 0; b < x.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
      const step = amax / levels;
      for (let j = 0; j < 32; j++) {
        assert.ok(Math.abs(back[b + j] - x[b + j]) <= slack * step, `type ${type} at ${b + j}`);
      }
    }
  }
});

Deno.test("Q8_0 and Q4_0 reproduce values already on their grid exactly", () => {
  const x = new Float32Array(64);
  for (let j = 0; j < 64; j++) x[j] = ((j * 37) % 255 - 127) / 64;
  x[10] = -127 / 64;
  assert.deepEqual(dequantize(GgmlType.Q8_0, quantize(GgmlType.Q8_0, x, 64), 64), x);
  for (let j = 0; j < 64; j++) x[j] = ((j * 7) % 16 - 8) * 0.125;
  x[0] = x[32] = -1;
  assert.deepEqual(dequantize(GgmlType.Q4_0, quantize(GgmlType.Q4_0, x, 64), 64), x);
});

Deno.test("codec rejects partial blocks, short buffers and unknown types by name", () => {
  assert.throws(
    () => quantize(GgmlType.Q4_0, new Float32Array(48), 48),
    /do not fill whole blocks/,
  );
  assert.throws(() => dequantize(GgmlType.Q8_0, new Uint8Array(33), 32), /need 34 bytes/);
  assert.throws(() => dequantize(GgmlType.IQ2_XXS, new Uint8Array(66), 256), /IQ2_XXS/);
  assert.throws(() => quantize(GgmlType.F16, new Float32Array(10), 4), /whole rows/);
});

Deno.test("F32, F16 and BF16 rows: quantize then dequantize", () => {
  const x = new Float32Array([1, -2.5, 65504, 1e-8, 3.14159]);
  assert.deepEqual(dequantize(GgmlType.F32, quantize(GgmlType.F32, x, 5), 5), x);
  const h = dequantize(GgmlType.F16, quantize(GgmlType.F16, x, 5), 5);
  assert.deepEqual([...h.subarray(0, 3)], [1, -2.5, 65504]);
  assert.equal(h[3], 0); // 1e-8 is below half the smallest subnormal
  assert.equal(h[4], 3.140625);
  const b = dequantize(GgmlType.BF16, quantize(GgmlType.BF16, x, 5), 5);
  assert.deepEqual([...b], [1, -2.5, 65536, Math.fround(1.00117176e-8), 3.140625]);
});
