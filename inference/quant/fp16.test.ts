import assert from "node:assert/strict";
import { bf16ToF32, f32ToBf16 } from "./bf16.ts";
import { f32ToFp16, fp16ToF32 } from "./fp16.ts";

Deno.test("fp16 -> f32 decodes normals, subnormals, zeros, infinities and NaN", () => {
  assert.equal(fp16ToF32(0x3c00), 1);
  assert.equal(fp16ToF32(0xc000), -2);
  assert.equal(fp16ToF32(0x7bff), 65504);
  assert.equal(fp16ToF32(0x0400), 2 ** -14);
  assert.equal(fp16ToF32(0x0001), 2 ** -24);
  assert.equal(fp16ToF32(0x03ff), 1023 * 2 ** -24);
  assert.ok(Object.is(fp16ToF32(0x8000), -0));
  assert.equal(fp16ToF32(0x7c00), Infinity);
  assert.equal(fp16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(fp16ToF32(0x7e00)));
  assert.ok(Number.isNaN(fp16ToF32(0xfc01)));
});

Deno.test("f32 -> fp16 rounds to nearest even at every boundary", () => {
  assert.equal(f32ToFp16(1), 0x3c00);
  assert.equal(f32ToFp16(1 + 2 ** -11), 0x3c00); // tie, stays even
  assert.equal(f32ToFp16(1 + 3 * 2 ** -11), 0x3c02); // tie, rounds up to even
  assert.equal(f32ToFp16(65504), 0x7bff);
  assert.equal(f32ToFp16(65519.99), 0x7bff);
  assert.equal(f32ToFp16(65520), 0x7c00); // tie between 65504 and 2^16 -> infinity
  assert.equal(f32ToFp16(-1e9), 0xfc00);
  assert.equal(f32ToFp16(2 ** -25), 0); // tie between 0 and the smallest subnormal
  assert.equal(f32ToFp16(2 ** -25 * 1.001), 1);
  assert.equal(f32ToFp16(3 * 2 ** -25), 2);
  assert.equal(f32ToFp16(1023.5 * 2 ** -24), 0x0400); // subnormal rounds up into the normals
  assert.equal(f32ToFp16(-0), 0x8000);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  u[0] = 0x7f800001; // any NaN becomes the quiet 0x7E00, keeping its sign
  assert.equal(f32ToFp16(f[0]), 0x7e00);
  u[0] = 0xffc00000;
  assert.equal(f32ToFp16(f[0]), 0xfe00);
  assert.equal(f32ToFp16(Infinity), 0x7c00);
  // A double that is not an f32 is first rounded to f32, like a C float argument.
  assert.equal(f32ToFp16(1 + 2 ** -11 + 2 ** -40), 0x3c00);
});

Deno.test("fp16 round-trips every finite half and agrees with Float16Array", () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaNs
    assert.equal(f32ToFp16(fp16ToF32(h)), h, `half ${h.toString(16)}`);
  }
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const h16 = new Float16Array(1);
  let s = 99;
  for (let i = 0; i < 50000; i++) {
    u[0] = s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    if (Number.isNaN(f[0])) continue;
    h16[0] = f[0];
    assert.equal(fp16ToF32(f32ToFp16(f[0])), h16[0], `bits ${u[0].toString(16)}`);
  }
});

Deno.test("bf16 keeps the top half rounded to nearest even and quiets NaN", () => {
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie, stays even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie, up to even
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(f32ToBf16(-2), 0xc000);
  assert.equal(f32ToBf16(3.4028234663852886e38), 0x7f80); // max float rounds to infinity
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  u[0] = 0x7f800001; // signalling NaN with a low payload
  assert.equal(f32ToBf16(f[0]), 0x7fc0);
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc2f7), -123.5);
  assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  assert.equal(bf16ToF32(0x0001), 2 ** -133); // subnormals are kept
});
