/**
 * Bit-exactness against ggml itself: the node-llama-cpp dev dependency ships
 * llama.cpp's libggml-base.so, whose reference quantizers and dequantizers we
 * call through FFI on the same inputs and compare byte for byte / bit for bit.
 * Without that library (another platform, no dev deps) these tests fail and
 * say what to install: an oracle that quietly stops running proves nothing.
 */
import assert from "node:assert/strict";
import { GgmlType } from "../ggml-type.ts";
import { dequantize, quantize } from "./codec.ts";
import { f32ToBf16 } from "./bf16.ts";
import { f32ToFp16, fp16ToF32 } from "./fp16.ts";
import { openGgml } from "../../tests/support/ggml-native.ts";

const LIB = new URL(
  "../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so",
  import.meta.url,
);

const ROW = { parameters: ["buffer", "buffer", "i64"], result: "void" } as const;
const SYMBOLS = {
  quantize_row_q8_0_ref: ROW,
  quantize_row_q4_0_ref: ROW,
  quantize_row_q4_K_ref: ROW,
  quantize_row_q5_K_ref: ROW,
  quantize_row_q6_K_ref: ROW,
  quantize_row_q5_0_ref: ROW,
  quantize_row_q5_1_ref: ROW,
  quantize_row_q2_K_ref: ROW,
  quantize_row_q3_K_ref: ROW,
  quantize_row_iq4_nl_ref: ROW,
  quantize_row_iq4_xs_ref: ROW,
  quantize_row_mxfp4_ref: ROW,
  dequantize_row_q8_0: ROW,
  dequantize_row_q4_0: ROW,
  dequantize_row_q4_K: ROW,
  dequantize_row_q5_K: ROW,
  dequantize_row_q6_K: ROW,
  dequantize_row_q5_0: ROW,
  dequantize_row_q5_1: ROW,
  dequantize_row_q2_K: ROW,
  dequantize_row_q3_K: ROW,
  dequantize_row_iq4_nl: ROW,
  dequantize_row_iq4_xs: ROW,
  dequantize_row_mxfp4: ROW,
  ggml_fp32_to_fp16: { parameters: ["f32"], result: "u16" },
  ggml_fp16_to_fp32: { parameters: ["u16"], result: "f32" },
  ggml_fp32_to_bf16_row_ref: ROW,
} as const;

/** ggml's library, or an error saying what to install. */
function requireLib(): Deno.DynamicLibrary<typeof SYMBOLS> {
  let present = false;
  try {
    present = Deno.build.os === "linux" && Deno.statSync(LIB).isFile;
  } catch {
    // absent: reported below
  }
  if (!present) {
    throw new Error(
      `${LIB.pathname} is missing: the ggml oracle needs the node-llama-cpp dev dependencies ` +
        "on linux-x64 (`npm install --omit=optional` installs @node-llama-cpp/linux-x64)",
    );
  }
  return openGgml(LIB, SYMBOLS);
}

const CASES = [
  { type: GgmlType.Q8_0, name: "q8_0", bytes: 34, block: 32 },
  { type: GgmlType.Q4_0, name: "q4_0", bytes: 18, block: 32 },
  { type: GgmlType.Q4_K, name: "q4_K", bytes: 144, block: 256 },
  { type: GgmlType.Q5_K, name: "q5_K", bytes: 176, block: 256 },
  { type: GgmlType.Q6_K, name: "q6_K", bytes: 210, block: 256 },
  { type: GgmlType.Q5_0, name: "q5_0", bytes: 22, block: 32 },
  { type: GgmlType.Q5_1, name: "q5_1", bytes: 24, block: 32 },
  { type: GgmlType.Q2_K, name: "q2_K", bytes: 84, block: 256 },
  { type: GgmlType.Q3_K, name: "q3_K", bytes: 110, block: 256 },
  { type: GgmlType.IQ4_NL, name: "iq4_nl", bytes: 18, block: 32 },
  { type: GgmlType.IQ4_XS, name: "iq4_xs", bytes: 136, block: 256 },
  { type: GgmlType.MXFP4, name: "mxfp4", bytes: 17, block: 32 },
] as const;

/** Deterministic inputs that stress the searches: gaussian-ish, skewed, sparse, constant. */
function inputs(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out = new Float32Array(n);
  let scale = 1;
  for (let i = 0; i < n; i++) {
    const kind = Math.floor(i / 256) % 7;
    const g = (rand() + rand() + rand() - 1.5) * 2;
    if (i % 256 === 0) scale = 10 ** (rand() * 8 - 4);
    if (kind === 0) out[i] = g * 0.02;
    else if (kind === 1) out[i] = g + 3; // all positive: the min is clamped to 0
    else if (kind === 2) out[i] = rand() < 0.9 ? 0 : g * 100;
    else if (kind === 3) out[i] = i % 32 === 5 ? 7.25 : g * 1e-3; // one outlier per sub-block
    else if (kind === 4) out[i] = -1.5; // constant
    else if (kind === 5) out[i] = Math.round(g * 8) / 8; // already on a coarse grid
    else out[i] = g * scale; // magnitudes from 1e-4 to 1e4
  }
  return out;
}

Deno.test({
  name: "ggml oracle: quantize and dequantize match libggml-base byte for byte",
  fn() {
    const lib = requireLib();
    const n = 256 * 28;
    for (let seed = 1; seed <= 8; seed++) {
      const x = inputs(n, seed);
      for (const c of CASES) {
        const ref = new Uint8Array((n / c.block) * c.bytes);
        lib.symbols[`quantize_row_${c.name}_ref`](x, ref, BigInt(n));
        const ours = quantize(c.type, x, n);
        const firstDiff = ours.findIndex((b, i) => b !== ref[i]);
        assert.equal(firstDiff, -1, `${c.name} seed ${seed}: first differing byte ${firstDiff}`);

        const refOut = new Float32Array(n);
        lib.symbols[`dequantize_row_${c.name}`](ref, refOut, BigInt(n));
        const ourOut = dequantize(c.type, ref, n);
        assert.deepEqual(
          new Uint32Array(ourOut.buffer),
          new Uint32Array(refOut.buffer),
          `${c.name} dequantize bits`,
        );
      }
    }
  },
});

Deno.test({
  name: "ggml oracle: fp16 and bf16 conversions match on edge and random values",
  fn() {
    const lib = requireLib();
    const bits = new Uint32Array(20000);
    let s = 7;
    for (let i = 0; i < bits.length; i++) bits[i] = s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    // Edges: zeros, subnormal halves, the rounding boundary to infinity, NaNs.
    const edges = [0, 0x80000000, 0x33000000, 0x33000001, 0x387fc000, 0x38800000, 0x477fefff];
    edges.push(0x477ff000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 1);
    bits.set(edges);
    const floats = new Float32Array(bits.buffer);
    for (let i = 0; i < floats.length; i++) {
      assert.equal(
        f32ToFp16(floats[i]),
        lib.symbols.ggml_fp32_to_fp16(floats[i]),
        `bits ${bits[i]}`,
      );
    }
    for (let h = 0; h < 65536; h++) {
      const ref = lib.symbols.ggml_fp16_to_fp32(h);
      if (Number.isNaN(ref)) assert.ok(Number.isNaN(fp16ToF32(h)));
      else assert.ok(Object.is(fp16ToF32(h), ref), `half ${h}`);
    }
    const refBf = new Uint16Array(floats.length);
    lib.symbols.ggml_fp32_to_bf16_row_ref(floats, refBf, BigInt(floats.length));
    for (let i = 0; i < floats.length; i++) {
      assert.equal(f32ToBf16(floats[i]), refBf[i], `bf16 of bits ${bits[i]}`);
    }
  },
});
