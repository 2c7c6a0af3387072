/**
 * matVec against llama.cpp's CPU kernels themselves: the node-llama-cpp dev
 * dependency ships the libggml-cpu-<variant>.so builds, which export the
 * activation quantizers (quantize_row_q8_0 / _q8_K, the ones the backend runs)
 * and the vec_dot kernels, both the plain C `_generic` ones and the SIMD ones
 * llama.cpp picks. We load the best variant this CPU runs (by the library's
 * own ggml_backend_score). Without the libraries these tests fail and say what
 * to install, rather than quietly stop checking.
 */
import assert from "node:assert/strict";
import { GgmlType, ggmlTypeName } from "../ggml-type.ts";
import { quantizeActivations } from "./activations.ts";
import { dequantize, quantize } from "./codec.ts";
import { f32ToFp16 } from "./fp16.ts";
import { f32ToBf16 } from "./bf16.ts";
import { matVec } from "./matvec.ts";
import { openGgml } from "../../tests/support/ggml-native.ts";

const BINS = new URL(
  "../../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/",
  import.meta.url,
);
const VARIANTS = [
  "zen4",
  "sapphirerapids",
  "cooperlake",
  "icelake",
  "cascadelake",
  "cannonlake",
  "skylakex",
  "alderlake",
  "haswell",
  "piledriver",
  "ivybridge",
  "sandybridge",
  "sse42",
  "x64",
];

const ROW = { parameters: ["buffer", "buffer", "i64"], result: "void" } as const;
const DOT = {
  parameters: ["i32", "buffer", "usize", "buffer", "usize", "buffer", "usize", "i32"],
  result: "void",
} as const;
const SYMBOLS = {
  ggml_cpu_init: { parameters: [], result: "void" },
  quantize_row_q8_0: ROW,
  quantize_row_q8_K: ROW,
  quantize_row_q8_1: ROW,
  ggml_vec_dot_q8_0_q8_0: DOT,
  ggml_vec_dot_q8_0_q8_0_generic: DOT,
  ggml_vec_dot_q4_0_q8_0: DOT,
  ggml_vec_dot_q4_0_q8_0_generic: DOT,
  ggml_vec_dot_q4_K_q8_K: DOT,
  ggml_vec_dot_q4_K_q8_K_generic: DOT,
  ggml_vec_dot_q5_K_q8_K: DOT,
  ggml_vec_dot_q5_K_q8_K_generic: DOT,
  ggml_vec_dot_q6_K_q8_K: DOT,
  ggml_vec_dot_q6_K_q8_K_generic: DOT,
  ggml_vec_dot_q5_0_q8_0: DOT,
  ggml_vec_dot_q5_0_q8_0_generic: DOT,
  ggml_vec_dot_q5_1_q8_1: DOT,
  ggml_vec_dot_q5_1_q8_1_generic: DOT,
  ggml_vec_dot_q2_K_q8_K: DOT,
  ggml_vec_dot_q2_K_q8_K_generic: DOT,
  ggml_vec_dot_q3_K_q8_K: DOT,
  ggml_vec_dot_q3_K_q8_K_generic: DOT,
  ggml_vec_dot_iq4_nl_q8_0: DOT,
  ggml_vec_dot_iq4_nl_q8_0_generic: DOT,
  ggml_vec_dot_iq4_xs_q8_K: DOT,
  ggml_vec_dot_iq4_xs_q8_K_generic: DOT,
  ggml_vec_dot_mxfp4_q8_0: DOT,
  ggml_vec_dot_mxfp4_q8_0_generic: DOT,
  ggml_vec_dot_f16: DOT,
  ggml_vec_dot_bf16: DOT,
} as const;

/** The variant llama.cpp would load here: the highest nonzero ggml_backend_score. */
function bestVariant(): string | undefined {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return undefined;
  let best: { name: string; score: number } | undefined;
  for (const name of VARIANTS) {
    const path = new URL(`libggml-cpu-${name}.so`, BINS);
    try {
      if (!Deno.statSync(path).isFile) continue;
      const lib = openGgml(path, { ggml_backend_score: { parameters: [], result: "i32" } });
      const score = lib.symbols.ggml_backend_score();
      if (score > 0 && (!best || score > best.score)) best = { name, score };
    } catch {
      continue;
    }
  }
  return best?.name;
}

const variant = bestVariant();
const variantName = variant ?? "none found";

/** The chosen variant's library, or an error saying what to install. */
function requireLib(): Deno.DynamicLibrary<typeof SYMBOLS> {
  if (!variant) {
    throw new Error(
      `no libggml-cpu-<variant>.so that this CPU runs in ${BINS.pathname}: the ggml dot ` +
        "oracle needs the node-llama-cpp dev dependencies on linux-x64 " +
        "(`npm install --omit=optional` installs @node-llama-cpp/linux-x64)",
    );
  }
  const lib = openGgml(new URL(`libggml-cpu-${variant}.so`, BINS), SYMBOLS);
  lib.symbols.ggml_cpu_init();
  return lib;
}

function randoms(n: number, seed: number, spread = 1): Float32Array {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  return new Float32Array(n).map((_, i) => (r() * 2 + r() * r()) * (i % 97 === 0 ? 20 : spread));
}

const Q_CASES = [
  { type: GgmlType.Q8_0, dot: "q8_0_q8_0", act: "q8_0", block: 32, bytes: 34 },
  { type: GgmlType.Q4_0, dot: "q4_0_q8_0", act: "q8_0", block: 32, bytes: 34 },
  { type: GgmlType.Q4_K, dot: "q4_K_q8_K", act: "q8_K", block: 256, bytes: 292 },
  { type: GgmlType.Q5_K, dot: "q5_K_q8_K", act: "q8_K", block: 256, bytes: 292 },
  { type: GgmlType.Q6_K, dot: "q6_K_q8_K", act: "q8_K", block: 256, bytes: 292 },
  { type: GgmlType.Q5_0, dot: "q5_0_q8_0", act: "q8_0", block: 32, bytes: 34 },
  { type: GgmlType.Q5_1, dot: "q5_1_q8_1", act: "q8_1", block: 32, bytes: 36 },
  { type: GgmlType.Q2_K, dot: "q2_K_q8_K", act: "q8_K", block: 256, bytes: 292 },
  { type: GgmlType.Q3_K, dot: "q3_K_q8_K", act: "q8_K", block: 256, bytes: 292 },
  { type: GgmlType.IQ4_NL, dot: "iq4_nl_q8_0", act: "q8_0", block: 32, bytes: 34 },
  { type: GgmlType.IQ4_XS, dot: "iq4_xs_q8_K", act: "q8_K", block: 256, bytes: 292 },
  { type: GgmlType.MXFP4, dot: "mxfp4_q8_0", act: "q8_0", block: 32, bytes: 34 },
] as const;

/** Grove's activation form of `x`, laid out as ggml's block_q8_0 / _q8_1 / _q8_K bytes. */
function packed(type: GgmlType, x: Float32Array, cols: number): Uint8Array {
  const a = quantizeActivations(type, x, cols);
  const k = a.form === "q8_K";
  const one = a.form === "q8_1";
  const block = k ? 256 : 32;
  const bytes = k ? 292 : one ? 36 : 34;
  const out = new Uint8Array((cols / block) * bytes);
  const view = new DataView(out.buffer);
  for (let b = 0, o = 0; b < cols / block; b++, o += bytes) {
    if (k) view.setFloat32(o, a.d[b], true);
    else view.setUint16(o, f32ToFp16(a.d[b]), true);
    if (one) view.setUint16(o + 2, f32ToFp16(a.s[b]), true);
    const qo = o + (k ? 4 : one ? 4 : 2);
    for (let j = 0; j < block; j++) out[qo + j] = a.qs[b * block + j] & 255;
    if (k) {
      for (let g = 0; g < 16; g++) view.setInt16(qo + 256 + 2 * g, a.sums16[b * 16 + g], true);
    }
  }
  return out;
}

Deno.test({
  name: `ggml dot oracle: activations quantize as llama.cpp's CPU backend does (${variantName})`,
  fn() {
    const lib = requireLib();
    const cols = 256 * 12;
    for (let seed = 1; seed <= 6; seed++) {
      const x = randoms(cols, seed, seed % 3 === 0 ? 1e-3 : 1);
      x.fill(0, 256, 512); // an all-zero Q8_K block
      x.fill(0.5, 512, 544); // constant: ties everywhere
      for (
        const [type, act, bytes] of [
          [GgmlType.Q8_0, "q8_0", 34],
          [GgmlType.Q5_1, "q8_1", 36],
          [GgmlType.Q4_K, "q8_K", 292],
        ] as const
      ) {
        const ref = new Uint8Array((cols / (act === "q8_K" ? 256 : 32)) * bytes);
        lib.symbols[`quantize_row_${act}`](x, ref, BigInt(cols));
        if (act === "q8_K") {
          // ggml leaves an all-zero block's bsums unwritten; ours are 0.
          ref.fill(0, 292 + 4 + 256, 2 * 292);
        }
        const ours = packed(type, x, cols);
        const first = ours.findIndex((b, i) => b !== ref[i]);
        assert.equal(first, -1, `${act} seed ${seed}: first differing byte ${first}`);
      }
    }
  },
});

Deno.test({
  name:
    `ggml dot oracle: matVec matches ggml_vec_dot_*_generic and the SIMD kernels (${variantName})`,
  fn() {
    const lib = requireLib();
    const [rows, cols] = [24, 1024];
    const s = new Float32Array(1);
    for (const c of Q_CASES) {
      const w = quantize(c.type, randoms(rows * cols, 5), cols);
      const deq = dequantize(c.type, w, rows * cols);
      const rowBytes = w.length / rows;
      for (let seed = 1; seed <= 3; seed++) {
        const x = randoms(cols, 100 + seed, seed === 2 ? 1e-2 : 1);
        const act = packed(c.type, x, cols);
        const out = new Float32Array(rows);
        matVec(c.type, w, rows, cols, x, out);
        let worstGeneric = 0, worstSimd = 0;
        for (let r = 0; r < rows; r++) {
          const row = w.subarray(r * rowBytes, (r + 1) * rowBytes);
          lib.symbols[`ggml_vec_dot_${c.dot}_generic`](cols, s, 0n, row, 0n, act, 0n, 1);
          const generic = s[0];
          lib.symbols[`ggml_vec_dot_${c.dot}`](cols, s, 0n, row, 0n, act, 0n, 1);
          const simd = s[0];
          let scale = 0;
          for (let j = 0; j < cols; j++) scale += Math.abs(deq[r * cols + j] * x[j]);
          worstGeneric = Math.max(worstGeneric, Math.abs(out[r] - generic) / scale);
          worstSimd = Math.max(worstSimd, Math.abs(out[r] - simd) / scale);
        }
        // f32 accumulation order is all that may differ: a few ulps of the magnitude.
        const what = `${ggmlTypeName(c.type)} seed ${seed}`;
        assert.ok(worstGeneric < 2e-6, `${what}: vs generic ${worstGeneric}`);
        assert.ok(worstSimd < 2e-6, `${what}: vs SIMD ${worstSimd}`);
      }
    }
  },
});

Deno.test({
  name: `ggml dot oracle: F16 and BF16 round activations as ggml_vec_dot_f16/bf16 (${variantName})`,
  fn() {
    const lib = requireLib();
    const [rows, cols] = [8, 512];
    const s = new Float32Array(1);
    for (
      const [type, sym, round] of [
        [GgmlType.F16, "ggml_vec_dot_f16", f32ToFp16],
        [GgmlType.BF16, "ggml_vec_dot_bf16", f32ToBf16],
      ] as const
    ) {
      const w = quantize(type, randoms(rows * cols, 9), cols);
      const x = randoms(cols, 10);
      const xh = Uint16Array.from(x, (v) => round(v));
      const out = new Float32Array(rows);
      matVec(type, w, rows, cols, x, out);
      for (let r = 0; r < rows; r++) {
        lib.symbols[sym](cols, s, 0n, w.subarray(r * cols * 2), 0n, xh, 0n, 1);
        assert.ok(
          Math.abs(out[r] - s[0]) <= 1e-5 * (Math.abs(s[0]) + 1),
          `${ggmlTypeName(type)} row ${r}: ${out[r]} vs ${s[0]}`,
        );
      }
    }
  },
});
