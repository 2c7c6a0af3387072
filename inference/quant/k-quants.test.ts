import assert from "node:assert/strict";
import { GgmlType } from "../ggml-type.ts";
import { dequantize, quantize } from "./codec.ts";
import { packScalesK4, scaleMinK4 } from "./k-quant-search.ts";

// ls = 1..8, lm = 9..16 packed by hand: bytes 0-3 scales, 4-7 mins (+ high bits
// of min 7 = 16 in bit 6 of byte 7), bytes 8-11 low nibbles of pairs 4-7.
const SCALES = [1, 2, 3, 4, 9, 10, 11, 76, 0xd5, 0xe6, 0xf7, 0x08];
const LS = [1, 2, 3, 4, 5, 6, 7, 8];
const LM = [9, 10, 11, 12, 13, 14, 15, 16];

Deno.test("K-quant 6-bit scale/min packing matches the hand layout and round-trips", () => {
  const packed = new Uint8Array(12);
  packScalesK4(new Uint8Array(LS), new Uint8Array(LM), packed, 0);
  assert.deepEqual([...packed], SCALES);
  const ls = new Uint8Array(8);
  const lm = new Uint8Array(8);
  for (let t = 0; t < 200; t++) {
    for (let j = 0; j < 8; j++) {
      ls[j] = (t * 7 + j * 13) & 63;
      lm[j] = (t * 11 + j * 5 + 3) & 63;
    }
    packScalesK4(ls, lm, packed, 0);
    for (let j = 0; j < 8; j++) assert.equal(scaleMinK4(j, packed, 0), ls[j] | (lm[j] << 8));
  }
});

Deno.test("Q4_K known block: d*sc*q - dmin*m per 32-value sub-block", () => {
  const block = new Uint8Array(144);
  block.set([0x00, 0x3c, 0x00, 0x38], 0); // d = 1, dmin = 0.5
  block.set(SCALES, 4);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) block[16 + 32 * c + l] = (l & 15) | ((15 - (l & 15)) << 4);
  }
  const out = dequantize(GgmlType.Q4_K, block, 256);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const lo = l & 15;
      assert.equal(out[64 * c + l], LS[2 * c] * lo - 0.5 * LM[2 * c]);
      assert.equal(out[64 * c + 32 + l], LS[2 * c + 1] * (15 - lo) - 0.5 * LM[2 * c + 1]);
    }
  }
});

Deno.test("Q5_K known block: qh bit 2c / 2c+1 adds 16 to the low / high nibble", () => {
  const block = new Uint8Array(176);
  block.set([0x00, 0x3c, 0x00, 0x3c], 0); // d = 1, dmin = 1
  block.set(SCALES, 4);
  for (let l = 0; l < 32; l++) block[16 + l] = l % 3 === 0 ? 0b01010101 : 0b10100010;
  for (let i = 0; i < 128; i++) block[48 + i] = 0x21; // low nibble 1, high nibble 2
  const out = dequantize(GgmlType.Q5_K, block, 256);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const h = l % 3 === 0 ? 0b01010101 : 0b10100010;
      const qLo = 1 + ((h >> (2 * c)) & 1 ? 16 : 0);
      const qHi = 2 + ((h >> (2 * c + 1)) & 1 ? 16 : 0);
      assert.equal(out[64 * c + l], LS[2 * c] * qLo - LM[2 * c]);
      assert.equal(out[64 * c + 32 + l], LS[2 * c + 1] * qHi - LM[2 * c + 1]);
    }
  }
});

Deno.test("Q6_K known block: 4+2 bit quants minus 32 times signed 16-group scales", () => {
  const block = new Uint8Array(210);
  const scales = [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 127, -128];
  new Int8Array(block.buffer, 192, 16).set(scales);
  block[208] = 0x00; // d = 0.5
  block[209] = 0x38;
  // Quant of value i (0..255) chosen as i % 64, packed by hand.
  const q = (i: number) => i % 64;
  for (let half = 0; half < 2; half++) {
    for (let l = 0; l < 32; l++) {
      const base = 128 * half + l;
      const [a, b, c, e] = [q(base), q(base + 32), q(base + 64), q(base + 96)];
      block[64 * half + l] = (a & 15) | ((c & 15) << 4);
      block[64 * half + l + 32] = (b & 15) | ((e & 15) << 4);
      block[128 + 32 * half + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
  const out = dequantize(GgmlType.Q6_K, block, 256);
  for (let i = 0; i < 256; i++) assert.equal(out[i], 0.5 * scales[i >> 4] * (q(i) - 32), `at ${i}`);
});

function gaussian(n: number, seed: number): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return new Float32Array(n).map(() => (r() + r() + r() + r() - 2) * 1.7);
}

function rmse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

Deno.test("K-quant round trips: error shrinks with bits and stays under ggml-like bounds", () => {
  const x = gaussian(256 * 32, 5);
  const std = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  const err = (t: GgmlType) => rmse(dequantize(t, quantize(t, x, 512), x.length), x) / std;
  const e4 = err(GgmlType.Q4_K);
  const e5 = err(GgmlType.Q5_K);
  const e6 = err(GgmlType.Q6_K);
  // Measured 0.069 / 0.035 / 0.017 here; each extra bit should about halve it.
  assert.ok(e4 < 0.08, `Q4_K relative RMSE ${e4}`);
  assert.ok(e5 < 0.04, `Q5_K relative RMSE ${e5}`);
  assert.ok(e6 < 0.02, `Q6_K relative RMSE ${e6}`);
  assert.ok(e6 < e5 && e5 < e4);
});

Deno.test("K-quants reproduce inputs that already lie on their grid", () => {
  // Q4_K/Q5_K: sub-block j holds (k_j / 64) * q with every level used, so
  // d = max scale / 63 = 1/64 is an exact f16 and each k_j an exact 6-bit scale.
  // Q6_K: 16-groups hold s_j * (q - 32) with -32 present in each group.
  const k = [63, 1, 7, 21, 33, 48, 5, 63];
  for (const [type, nmax] of [[GgmlType.Q4_K, 15], [GgmlType.Q5_K, 31]]) {
    const x = new Float32Array(256);
    for (let j = 0; j < 8; j++) {
      for (let l = 0; l < 32; l++) x[32 * j + l] = (k[j] / 64) * ((l * 7) % (nmax + 1));
      x[32 * j] = (k[j] / 64) * nmax;
    }
    x.fill(0, 64, 96); // an all-zero sub-block too
    const back = dequantize(type, quantize(type, x, 256), 256);
    assert.deepEqual(back, x, `type ${type}`);
  }
  const x = new Float32Array(256);
  for (let g = 0; g < 16; g++) {
    for (let l = 0; l < 16; l++) x[16 * g + l] = 0.125 * (g % 4 + 1) * (((l * 5) % 64) - 32);
    x[16 * g] = -32 * 0.125 * (g % 4 + 1);
  }
  // Largest scale 0.5: d = -0.5/128 is an exact f16 and every group scale an integer.
  assert.deepEqual(dequantize(GgmlType.Q6_K, quantize(GgmlType.Q6_K, x, 256), 256), x);
});

Deno.test("Q6_K of an all-zero block is all-zero bytes; Q4_K of zeros decodes to zeros", () => {
  const zeros = new Float32Array(512);
  assert.ok(quantize(GgmlType.Q6_K, zeros, 256).every((b) => b === 0));
  assert.ok(
    dequantize(GgmlType.Q4_K, quantize(GgmlType.Q4_K, zeros, 256), 512).every((v) => v === 0),
  );
});
