/**
 * Weight bandwidth of matVec / matVecBatch on a 2048x2048 matrix per type:
 *   npx deno run -A inference/quant/bench.ts [rows] [cols] [batch]
 * GB/s counts the encoded weight bytes read per product (x and out are tiny).
 * "f32-act" is matVecF32Activations, the unrounded product, for comparison.
 */
import { GgmlType, ggmlTypeName } from "../ggml-type.ts";
import { quantize } from "./codec.ts";
import { matVec, matVecBatch } from "./matvec.ts";
import { matVecF32Activations } from "./matvec-f32-act.ts";

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

function time(fn: () => void, minMs = 400): number {
  fn();
  fn();
  const samples: number[] = [];
  const start = performance.now();
  while (performance.now() - start < minMs || samples.length < 5) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

const types = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
];
console.log(`matVec ${rows}x${cols}; matVecBatch with n=${batch}`);
console.log(
  "type   MB     matVec ms  GB/s   Gw/s  | batch ms/vec  GB/s-equiv | f32-act ms  GB/s",
);
for (const type of types) {
  const w = quantize(type, values, cols);
  const ms = time(() => matVec(type, w, rows, cols, x, out));
  const bms = time(() => matVecBatch(type, w, rows, cols, x, batch, out));
  const fms = time(() => matVecF32Activations(type, w, rows, cols, x, out));
  const gbs = w.length / ms / 1e6;
  const gws = (rows * cols) / ms / 1e6;
  const per = bms / batch;
  console.log(
    `${ggmlTypeName(type).padEnd(6)} ${(w.length / 1e6).toFixed(2).padStart(5)}  ` +
      `${ms.toFixed(3).padStart(8)}  ${gbs.toFixed(2).padStart(5)}  ${
        gws.toFixed(2).padStart(5)
      } | ` +
      `${per.toFixed(3).padStart(8)}  ${(w.length / per / 1e6).toFixed(2).padStart(6)} | ` +
      `${fms.toFixed(3).padStart(8)}  ${(w.length / fms / 1e6).toFixed(2).padStart(5)}`,
  );
}
