import assert from "node:assert/strict";
import {
  assertClose,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import { submitKernels } from "./bound-kernel.ts";
import { bindElementwise, prepareElementwise } from "./elementwise.ts";
import { gelu } from "../../gelu.ts";

const TOL = { atol: 1e-6, rtol: 1e-5 };

Deno.test("elementwise add: residual add in place, non-multiple of the workgroup", async () => {
  const { device } = await createTestGpu();
  await prepareElementwise(device, "add");
  const n = 1000;
  const a = randomF32(n, 1), b = randomF32(n, 2);
  const ab = uploadF32(device, a), bb = uploadF32(device, b);
  submitKernels(device, [bindElementwise(device, "add", { a: ab, b: bb }, { n })]);
  assertClose(await readF32(device, ab, n), a.map((x, i) => x + b[i]), TOL);
});

Deno.test("elementwise add: offsets touch only the window", async () => {
  const { device } = await createTestGpu();
  const a = randomF32(50, 3), b = randomF32(40, 4);
  const ab = uploadF32(device, a), bb = uploadF32(device, b);
  submitKernels(device, [
    bindElementwise(device, "add", { a: ab, b: bb }, { n: 20, aOffset: 7, bOffset: 13 }),
  ]);
  const want = a.slice();
  for (let i = 0; i < 20; i++) want[7 + i] += b[13 + i];
  assertClose(await readF32(device, ab, 50), want, TOL);
});

Deno.test("elementwise addBias: one bias per row", async () => {
  const { device } = await createTestGpu();
  await prepareElementwise(device, "addBias");
  const width = 72, rows = 5;
  const a = randomF32(width * rows, 5), bias = randomF32(width, 6);
  const ab = uploadF32(device, a), bb = uploadF32(device, bias);
  submitKernels(device, [
    bindElementwise(device, "addBias", { a: ab, b: bb }, { n: width * rows, width }),
  ]);
  assertClose(await readF32(device, ab, a.length), a.map((x, i) => x + bias[i % width]), TOL);
  assert.throws(
    () => bindElementwise(device, "addBias", { a: ab, b: bb }, { n: 100, width }),
    /not rows of 72/,
  );
});

Deno.test("elementwise swiglu: silu(gate) * up, large magnitudes included", async () => {
  const { device } = await createTestGpu();
  await prepareElementwise(device, "swiglu");
  // 777 values go one by one, 776 by vec4s
  for (const n of [777, 776]) {
    const g = randomF32(n, 7, 12), u = randomF32(n, 8, 3);
    g[0] = -120; // exp overflows: silu must go to 0, not NaN
    g[1] = 95;
    const gb = uploadF32(device, g), ub = uploadF32(device, u);
    submitKernels(device, [bindElementwise(device, "swiglu", { a: gb, b: ub }, { n })]);
    const want = g.map((x, i) => (x / (1 + Math.exp(-x))) * u[i]);
    const got = await readF32(device, gb, n);
    assertClose(got, want, TOL, `swiglu n=${n}`);
    assert.ok(Number.isFinite(got[0]));
  }
});

Deno.test("elementwise: a kernel bound for vec4s refuses counts that are not", async () => {
  const { device } = await createTestGpu();
  const a = uploadF32(device, randomF32(16, 9)), b = uploadF32(device, randomF32(16, 10));
  const k = bindElementwise(device, "swiglu", { a, b }, { n: 8 });
  assert.throws(() => k.update({ n: 6 }), /bound for vec4s; n 6/);
  k.update({ n: 12 });
});

Deno.test("elementwise geglu: ggml's f16-table GELU of the gate times up (inference/gelu.ts)", async () => {
  const { device } = await createTestGpu();
  await prepareElementwise(device, "geglu");
  for (const n of [777, 776]) {
    const g = randomF32(n, 11, 6), u = randomF32(n, 12, 3);
    [g[0], g[1], g[2], g[3], g[4]] = [-10, 10, -10.5, 37, -0.0001];
    const gb = uploadF32(device, g), ub = uploadF32(device, u);
    submitKernels(device, [bindElementwise(device, "geglu", { a: gb, b: ub }, { n })]);
    const got = await readF32(device, gb, n);
    // The GPU's tanh may differ from the CPU's by an ulp, which an f16 rounding can turn into
    // one f16 step of the result (2^-11 relative).
    assertClose(got, g.map((x, i) => Math.fround(gelu(x) * u[i])), { atol: 1e-6, rtol: 1e-3 });
    assert.deepEqual([...got.slice(0, 4)], [0, Math.fround(10 * u[1]), 0, Math.fround(37 * u[3])]);
  }
});

Deno.test("elementwise scale: every value times the factor, no second buffer", async () => {
  const { device } = await createTestGpu();
  await prepareElementwise(device, "scale");
  for (const n of [30, 32]) {
    const a = randomF32(n, 13);
    const ab = uploadF32(device, a);
    submitKernels(device, [bindElementwise(device, "scale", { a: ab }, { n, scale: 16 })]);
    assert.deepEqual(await readF32(device, ab, n), a.map((x) => x * 16));
  }
});

Deno.test("elementwise softcap: cap · tanh(x / cap), as the CPU's final soft-capping", async () => {
  const { device } = await createTestGpu();
  await prepareElementwise(device, "softcap");
  const a = randomF32(1000, 14, 40);
  const ab = uploadF32(device, a);
  submitKernels(device, [bindElementwise(device, "softcap", { a: ab }, { n: 1000, scale: 30 })]);
  const inv = Math.fround(1 / 30);
  const want = a.map((x) => Math.fround(Math.tanh(Math.fround(x * inv))) * 30);
  assertClose(await readF32(device, ab, 1000), want, { atol: 1e-5, rtol: 1e-5 });
});
