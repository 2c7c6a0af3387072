/**
 * The layouts of the types added for issue 15, on hand-made blocks (the
 * byte-for-byte agreement with ggml is ggml-oracle.test.ts), and a round
 * trip through each quantizer staying within its format's resolution.
 */
import assert from "node:assert/strict";
import { blockGeometry, GgmlType, ggmlTypeName } from "../ggml-type.ts";
import { dequantize, quantize } from "./codec.ts";
import { KVALUES_IQ4NL } from "./iq4.ts";
import { KVALUES_MXFP4 } from "./mxfp4.ts";

Deno.test("MXFP4 known block: E8M0 exponent e scales the doubled E2M1 levels by 2^(e-128)", () => {
  const block = new Uint8Array(17);
  block[0] = 128; // 2^0: the values are the doubled levels themselves
  for (let j = 0; j < 16; j++) block[1 + j] = j | ((15 - j) << 4);
  const out = dequantize(GgmlType.MXFP4, block, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(out[j], KVALUES_MXFP4[j]);
    assert.equal(out[j + 16], KVALUES_MXFP4[15 - j]);
  }
  block[0] = 1; // the subnormal end: 2^-127
  assert.equal(dequantize(GgmlType.MXFP4, block, 32)[1], 2 ** -127);
});

Deno.test("IQ4_XS known block: 6-bit sub-block scales from scales_l nibbles and scales_h pairs", () => {
  const block = new Uint8Array(136);
  block[1] = 0x3c; // d = 1
  // Sub-block ib gets ls = 32 + ib + 1 (dl = ib + 1): low nibbles, high bits 2 (=32).
  let h = 0;
  for (let ib = 0; ib < 8; ib++) {
    const ls = 33 + ib;
    block[4 + (ib >> 1)] |= (ls & 15) << (4 * (ib & 1));
    h |= (ls >> 4) << (2 * ib);
  }
  block[2] = h & 0xff;
  block[3] = h >> 8;
  for (let j = 0; j < 128; j++) block[8 + j] = (j & 15) | ((15 - (j & 15)) << 4);
  const out = dequantize(GgmlType.IQ4_XS, block, 256);
  for (let ib = 0; ib < 8; ib++) {
    for (let j = 0; j < 16; j++) {
      assert.equal(out[32 * ib + j], (ib + 1) * KVALUES_IQ4NL[j]);
      assert.equal(out[32 * ib + 16 + j], (ib + 1) * KVALUES_IQ4NL[15 - j]);
    }
  }
});

Deno.test("Q5_0 and Q5_1 known blocks: the fifth bit of value j is bit j of the u32 qh", () => {
  const q50 = new Uint8Array(22);
  q50[1] = 0x3c; // d = 1
  q50[2] = 0x01; // value 0 gets its fifth bit
  q50[5] = 0x80; // value 31 too
  const a = dequantize(GgmlType.Q5_0, q50, 32);
  assert.equal(a[0], 0); // 16 - 16
  assert.equal(a[1], -16);
  assert.equal(a[31], 0);
  const q51 = new Uint8Array(24);
  q51[1] = 0x3c; // d = 1
  q51[3] = 0x40; // m = 2
  q51[4] = 0x02; // value 1 gets its fifth bit
  q51[8 + 15] = 0x70; // value 31: nibble 7
  const b = dequantize(GgmlType.Q5_1, q51, 32);
  assert.equal(b[0], 2);
  assert.equal(b[1], 18);
  assert.equal(b[31], 9);
});

for (
  const [type, tolerance] of [
    [GgmlType.Q5_0, 1 / 16],
    [GgmlType.Q5_1, 1 / 31],
    [GgmlType.Q2_K, 0.5],
    [GgmlType.Q3_K, 0.25],
    [GgmlType.IQ4_NL, 0.15],
    [GgmlType.IQ4_XS, 0.15],
    [GgmlType.MXFP4, 0.34],
  ] as const
) {
  Deno.test(`${ggmlTypeName(type)} round trip stays within its resolution`, () => {
    const n = 1024;
    let s = 11;
    const x = new Float32Array(n).map(() =>
      ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2
    );
    const bytes = quantize(type, x, 512);
    assert.equal(
      bytes.length,
      (n / blockGeometry(type)!.blockSize) * blockGeometry(type)!.typeSize,
    );
    const back = dequantize(type, bytes, n);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(back[i] - x[i]));
    assert.ok(worst <= tolerance, `${ggmlTypeName(type)}: worst error ${worst}`);
  });
}
