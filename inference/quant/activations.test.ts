import assert from "node:assert/strict";
import { GgmlType } from "../ggml-type.ts";
import { activationFormFor, emptyActivations, quantizeActivations } from "./activations.ts";

Deno.test("each weight type gets llama.cpp's vec_dot_type for its activations", () => {
  assert.equal(activationFormFor(GgmlType.Q4_0), "q8_0");
  assert.equal(activationFormFor(GgmlType.Q8_0), "q8_0");
  assert.equal(activationFormFor(GgmlType.Q4_K), "q8_K");
  assert.equal(activationFormFor(GgmlType.Q6_K), "q8_K");
  assert.equal(activationFormFor(GgmlType.F16), "f16");
  assert.equal(activationFormFor(GgmlType.BF16), "bf16");
  assert.equal(activationFormFor(GgmlType.F32), "f32");
});

Deno.test("Q8_0 rounds halves away from zero, Q8_K to even, as ggml's quantizers do", () => {
  // amax 127 gives scale 1 in both forms, so x * (1 / d) is x itself.
  const x = new Float32Array(256);
  x[0] = 127;
  x.set([2.5, -2.5, 3.5, 0.5], 1);
  const q0 = quantizeActivations(GgmlType.Q8_0, x, 256);
  assert.deepEqual([...q0.qs.subarray(0, 5)], [127, 3, -3, 4, 1]);
  assert.equal(q0.d[0], 1);
  assert.equal(q0.sums16[0], 127 + 3 - 3 + 4 + 1);
  // Q8_K takes the sign of the largest value: iscale = -127 / 127 flips every level.
  const qk = quantizeActivations(GgmlType.Q4_K, x, 256);
  assert.deepEqual([...qk.qs.subarray(0, 5)], [-127, -2, 2, -4, 0]);
  assert.equal(qk.d[0], -1);
});

Deno.test("quantizeActivations reuses a holder's buffers and checks its input", () => {
  const into = emptyActivations();
  const x = new Float32Array(512).map((_, i) => Math.sin(i));
  const a = quantizeActivations(GgmlType.Q6_K, x, 256, 2, into);
  const qs = a.qs;
  quantizeActivations(GgmlType.Q6_K, x, 256, 2, into);
  assert.equal(into.qs, qs);
  assert.equal(a.d.length >= 2 && a.n === 2, true);
  const f = quantizeActivations(GgmlType.BF16, Float32Array.of(1 + 2 ** -9), 1);
  assert.equal(f.values[0], 1); // bf16 keeps 7 mantissa bits
  assert.throws(() => quantizeActivations(GgmlType.Q4_0, x, 48), /whole blocks of 32/);
  assert.throws(() => quantizeActivations(GgmlType.Q4_0, x, 256, 3), /needs 768 values/);
});
