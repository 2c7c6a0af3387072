import assert from "node:assert/strict";
import { gelu, geluF32 } from "./gelu.ts";
import { f32ToFp16, fp16ToF32 } from "./quant/fp16.ts";

Deno.test("gelu: the f16 table's value of the f16-rounded input, as ggml's CPU backend", () => {
  for (const x of [-9.99, -3.3, -1, -0.1234, 0, 1e-4, 0.5, 1, 2.71828, 9.99]) {
    assert.equal(gelu(x), fp16ToF32(f32ToFp16(geluF32(fp16ToF32(f32ToFp16(x))))), `x = ${x}`);
  }
  // Near 1, inputs within one f16 step share a table entry.
  assert.equal(gelu(1.0001), gelu(1));
  assert.ok(Math.abs(gelu(1) - 0.8412) < 1e-3);
});

Deno.test("gelu: inputs at or beyond ±10 bypass the table", () => {
  assert.equal(gelu(-10), 0);
  assert.equal(gelu(-50), 0);
  assert.equal(gelu(10), 10);
  assert.equal(gelu(12.345678), 12.345678);
});
