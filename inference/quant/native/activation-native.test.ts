/**
 * siluMul's native loop (activation.c) against the TypeScript one it replaces: the same f32
 * bits for 10^6 gates across the ranges activations take, and for the edge values.
 */
import assert from "node:assert/strict";
import { silu, siluMul } from "../../primitives.ts";
import { randoms } from "../../../tests/support/quant/dots.ts";
import { siluMulNative } from "./activation-native.ts";
import { setNativeKernels } from "./matvec-native.ts";
import { freshNativeBuild } from "../../../tests/support/native-build.ts";

const built = await freshNativeBuild();

function typescript(gate: Float32Array, up: Float32Array, count: number): Float32Array {
  const out = gate.slice();
  for (let i = 0; i < count; i++) out[i] = silu(gate[i]) * up[i];
  return out;
}

Deno.test("native silu(gate) * up equals the TypeScript loop's f32 bits", () => {
  if (built === null) {
    return assert.equal(siluMulNative(new Float32Array(1), new Float32Array(1), 1), false);
  }
  assert.ok(setNativeKernels(true, built));
  for (const spread of [1, 6, 40, 300]) {
    // 250,003 values: the vector loop and its padded tail.
    const n = 250_003;
    const gate = randoms(n, spread).map((x) => x * spread);
    const up = randoms(n, spread + 1);
    const want = typescript(gate, up, n - 2);
    const got = gate.slice();
    siluMul(got, up, n - 2);
    assert.deepEqual(got, want, `spread ${spread}`);
    assert.equal(got[n - 1], gate[n - 1], "values past count untouched");
  }
  const edges = new Float32Array([
    0,
    -0,
    1e-30,
    -1e-30,
    1e-45,
    88,
    -88,
    89,
    -89,
    103,
    -103,
    745,
    -745,
    3.4e38,
    -3.4e38,
    Infinity,
    -Infinity,
    NaN,
    0.5,
    -0.5,
  ]);
  for (const u of [1.5, -2, 0]) {
    const up = new Float32Array(edges.length).fill(u);
    const got = edges.slice();
    siluMul(got, up, edges.length);
    // NaN stays NaN (its sign and payload bits are the CPU's business, not the model's).
    const want = typescript(edges, up, edges.length);
    got.forEach((x, i) => assert.ok(Object.is(x, want[i]), `silu(${edges[i]}) * ${u}: ${x}`));
  }
});
