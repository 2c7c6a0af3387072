/**
 * Block-quantized weights times f64 activations, the engine under both
 * matVec (activations decoded from their llama.cpp rounding, see matvec.ts)
 * and matVecF32Activations (x widened from f32). Products and sums run in
 * f64, so decoded integer-valued activations give ggml's integer block dots
 * up to f64 rounding, at float-kernel speed.
 */
import { GgmlType, type QuantWeightType } from "../ggml-type.ts";
import { bytesFor } from "./codec.ts";
import { DECODE_ROW_F64 } from "./decode-f64.ts";
import { matVecQ4_K, matVecQ5_K, matVecQ6_K } from "./matvec-k.ts";
import { matVecQ4_0, matVecQ8_0 } from "./matvec-q-0.ts";

// Scratch grown on demand and reused, so steady-state calls allocate nothing big.
let xsumScratch = new Float64Array(0);
let rowScratch = new Float64Array(0);
let accScratch = new Float64Array(0);

/** Sums of x over consecutive groups of `group` values. */
function groupSums(x: Float64Array, cols: number, group: number): Float64Array {
  const groups = cols / group;
  if (xsumScratch.length < groups) xsumScratch = new Float64Array(groups);
  for (let g = 0, i = 0; g < groups; g++) {
    let s = 0;
    const end = i + group;
    for (; i < end; i++) s += x[i];
    xsumScratch[g] = s;
  }
  return xsumScratch;
}

type QuantKernel = (
  w: Uint8Array,
  ws: Int8Array, // the same bytes as int8
  rows: number,
  cols: number,
  x: Float64Array,
  out: Float32Array,
) => void;

/**
 * The types without a fused kernel (those of issue 15): each row decoded
 * into f64 exactly, then dotted with x. Their fast path is the WASM one.
 */
function decodedRows(type: QuantWeightType): QuantKernel {
  return (w, ws, rows, cols, x, out) => {
    const rowBytes = bytesFor(type, cols);
    if (rowScratch.length < cols) rowScratch = new Float64Array(cols);
    const row = rowScratch;
    const decodeRow = DECODE_ROW_F64[type];
    for (let r = 0; r < rows; r++) {
      decodeRow(w, ws, r * rowBytes, cols, row);
      let a0 = 0, a1 = 0;
      for (let j = 0; j < cols; j += 2) {
        a0 += row[j] * x[j];
        a1 += row[j + 1] * x[j + 1];
      }
      out[r] = a0 + a1;
    }
  };
}

/** The fused kernel of each block-quantized type, with the x group sums it wants. */
const KERNELS: Record<QuantWeightType, QuantKernel> = {
  [GgmlType.Q8_0]: matVecQ8_0,
  [GgmlType.Q4_0]: (w, _ws, rows, cols, x, out) =>
    matVecQ4_0(w, rows, cols, x, groupSums(x, cols, 32), out),
  [GgmlType.Q4_K]: (w, _ws, rows, cols, x, out) =>
    matVecQ4_K(w, rows, cols, x, groupSums(x, cols, 32), out),
  [GgmlType.Q5_K]: (w, _ws, rows, cols, x, out) =>
    matVecQ5_K(w, rows, cols, x, groupSums(x, cols, 32), out),
  [GgmlType.Q6_K]: (w, ws, rows, cols, x, out) =>
    matVecQ6_K(w, ws, rows, cols, x, groupSums(x, cols, 16), out),
  [GgmlType.Q5_0]: decodedRows(GgmlType.Q5_0),
  [GgmlType.Q5_1]: decodedRows(GgmlType.Q5_1),
  [GgmlType.Q2_K]: decodedRows(GgmlType.Q2_K),
  [GgmlType.Q3_K]: decodedRows(GgmlType.Q3_K),
  [GgmlType.IQ4_NL]: decodedRows(GgmlType.IQ4_NL),
  [GgmlType.IQ4_XS]: decodedRows(GgmlType.IQ4_XS),
  [GgmlType.MXFP4]: decodedRows(GgmlType.MXFP4),
};

/** out[r] = dot(row r, x) with the fused per-type kernels; sizes are checked by the caller. */
export function matVecQuantF64(
  type: QuantWeightType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  x: Float64Array,
  out: Float32Array,
): void {
  const signed = new Int8Array(weights.buffer, weights.byteOffset, rows * bytesFor(type, cols));
  KERNELS[type](weights, signed, rows, cols, x, out);
}

/**
 * out[v * rows + r] = dot(row r, xs[v * cols ..]) for v < n. With four or more
 * vectors each weight row is decoded once (into f64, exactly) and dotted with
 * all of them, four per pass so each decoded weight is loaded once per four
 * products; fewer vectors go through the fused kernel one by one.
 */
export function matVecBatchQuantF64(
  type: QuantWeightType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  xs: Float64Array,
  n: number,
  out: Float32Array,
): void {
  if (n < 4) {
    for (let v = 0; v < n; v++) {
      const x = xs.subarray(v * cols, (v + 1) * cols);
      matVecQuantF64(type, weights, rows, cols, x, out.subarray(v * rows, (v + 1) * rows));
    }
    return;
  }
  const rowBytes = bytesFor(type, cols);
  const signed = new Int8Array(weights.buffer, weights.byteOffset, rows * rowBytes);
  if (rowScratch.length < cols) rowScratch = new Float64Array(cols);
  if (accScratch.length < n) accScratch = new Float64Array(n);
  const row = rowScratch;
  const acc = accScratch;
  const n4 = n & ~3;
  const decodeRow = DECODE_ROW_F64[type];
  for (let r = 0; r < rows; r++) {
    decodeRow(weights, signed, r * rowBytes, cols, row);
    for (let v = 0; v < n4; v += 4) {
      const x0 = v * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let j = 0; j < cols; j++) {
        const wj = row[j];
        a0 += wj * xs[x0 + j];
        a1 += wj * xs[x1 + j];
        a2 += wj * xs[x2 + j];
        a3 += wj * xs[x3 + j];
      }
      acc[v] = a0;
      acc[v + 1] = a1;
      acc[v + 2] = a2;
      acc[v + 3] = a3;
    }
    for (let v = n4; v < n; v++) {
      const xo = v * cols;
      let a0 = 0, a1 = 0;
      for (let j = 0; j < cols; j += 2) {
        a0 += row[j] * xs[xo + j];
        a1 += row[j + 1] * xs[xo + j + 1];
      }
      acc[v] = a0 + a1;
    }
    for (let v = 0; v < n; v++) out[v * rows + r] = acc[v];
  }
}
