/**
 * Weight bandwidth of matVec / matVecBatch on a 2048x2048 matrix per type:
 *   npx deno run -A tests/bench/cpu-matvec.ts [rows] [cols] [batch]
 * GB/s counts the encoded weight bytes read per product (x and out are tiny).
 * Each timing cycles through copies of the matrix totalling >= 64 MB, so the
 * weights come from memory, not from the last-level cache, as in decode.
 * "wasm" is matVec with the WASM SIMD kernels (inference/quant/wasm/), "ts" the TypeScript
 * kernels it falls back to, "f32-act" matVecF32Activations (unrounded x).
 */
import { ggmlTypeName, SUPPORTED_WEIGHT_TYPES } from "../../inference/mod.ts";
import {
  hasWasmKernel,
  matVec,
  matVecBatch,
  matVecF32Activations,
  quantize,
  setWasmKernels,
} from "../../inference/quant/mod.ts";

const rows = Number(Deno.args[0] ?? 2048);
const cols = Number(Deno.args[1] ?? 2048);
const batch = Number(Deno.args[2] ?? 8);

let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
const values = new Float32Array(rows * cols).map(() => rand() * 0.1);
const x = new Float32Array(cols * batch).map(() => rand());
const out = new Float32Array(rows * batch);

function median(a: number[]): number {
  return a.sort((p, q) => p - q)[a.length >> 1];
}

/** Median ms of one product, over passes through all copies. */
function time(copies: Uint8Array[], fn: (w: Uint8Array) => void, minMs = 300): number {
  for (const w of copies) fn(w);
  const samples: number[] = [];
  const start = performance.now();
  while (performance.now() - start < minMs || samples.length < 3) {
    const t0 = performance.now();
    for (const w of copies) fn(w);
    samples.push((performance.now() - t0) / copies.length);
  }
  return median(samples);
}

const types = SUPPORTED_WEIGHT_TYPES;
const gbs = (bytes: number, ms: number) => (bytes / ms / 1e6).toFixed(2).padStart(6);
console.log(`matVec ${rows}x${cols}; matVecBatch with n=${batch}; GB/s of weights`);
console.log("type   MB    copies | wasm ms   GB/s |  ts ms    GB/s | batch GB/s-eq | f32-act GB/s");
for (const type of types) {
  const w = quantize(type, values, cols);
  const copies = Array.from({ length: Math.ceil(64e6 / w.length) }, () => w.slice());
  const wasm = hasWasmKernel(type);
  const ms = time(copies, (c) => matVec(type, c, rows, cols, x, out));
  const bms = time(copies, (c) => matVecBatch(type, c, rows, cols, x, batch, out)) / batch;
  setWasmKernels(false);
  const tms = wasm ? time(copies, (c) => matVec(type, c, rows, cols, x, out)) : ms;
  setWasmKernels(true);
  const fms = time(copies, (c) => matVecF32Activations(type, c, rows, cols, x, out));
  console.log(
    `${ggmlTypeName(type).padEnd(6)} ${(w.length / 1e6).toFixed(2).padStart(5)} ` +
      `${String(copies.length).padStart(4)}   | ` +
      (wasm ? `${ms.toFixed(3).padStart(6)} ${gbs(w.length, ms)}` : "     -      -") +
      ` | ${tms.toFixed(3).padStart(6)} ${gbs(w.length, tms)} | ${gbs(w.length, bms)}       ` +
      `| ${gbs(w.length, fms)}`,
  );
}
