/**
 * out = W x with x kept in f32 (no activation rounding), for a row-major
 * matrix W in a ggml weight type, computed from the encoded blocks, plus a
 * batched form that decodes each weight row once for n input vectors. More
 * exact than llama.cpp, which rounds x first (see matvec.ts); kept for
 * comparisons and for callers that want the unrounded product.
 */
import {
  type FloatWeightType,
  GgmlType,
  ggmlTypeName,
  isQuantWeightType,
  isSupportedWeightType,
} from "../ggml-type.ts";
import { bytesFor, dequantizeRow } from "./codec.ts";
import { matVecBf16, matVecF16, matVecF32 } from "./matvec-float.ts";
import { matVecQuantF64 } from "./matvec-f64.ts";

// Scratch grown on demand and reused, so steady-state calls allocate nothing big.
let xWide = new Float64Array(0);
let rowScratch = new Float32Array(0);
let accScratch = new Float64Array(0);

export function check(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  xNeeded: number,
  out: Float32Array,
  outNeeded: number,
): number {
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`matVec: bad row count ${rows}`);
  const rowBytes = bytesFor(type, cols);
  if (weights.length < rows * rowBytes) {
    throw new Error(
      `matVec: ${rows}x${cols} ${ggmlTypeName(type)} needs ${
        rows * rowBytes
      } bytes, got ${weights.length}`,
    );
  }
  if (x.length < xNeeded) throw new Error(`matVec: input has ${x.length} values, need ${xNeeded}`);
  if (out.length < outNeeded) {
    throw new Error(`matVec: output has room for ${out.length} values, need ${outNeeded}`);
  }
  return rowBytes;
}

/** A typed view of the bytes when aligned, else an aligned copy (only for odd offsets). */
export function view<T>(
  w: Uint8Array,
  bytes: number,
  size: number,
  make: (b: ArrayBuffer, o: number, n: number) => T,
): T {
  if (w.byteOffset % size === 0) return make(w.buffer as ArrayBuffer, w.byteOffset, bytes / size);
  const copy = w.slice(0, bytes);
  return make(copy.buffer, 0, bytes / size);
}

type FloatKernel = (
  w: Uint8Array,
  bytes: number,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
) => void;

/** The kernel of each float weight type, over a typed view of its values. */
const FLOAT_KERNELS: Record<FloatWeightType, FloatKernel> = {
  [GgmlType.F32]: (w, bytes, rows, cols, x, out) =>
    matVecF32(view(w, bytes, 4, (b, o, n) => new Float32Array(b, o, n)), rows, cols, x, out),
  [GgmlType.F16]: (w, bytes, rows, cols, x, out) =>
    matVecF16(view(w, bytes, 2, (b, o, n) => new Uint16Array(b, o, n)), rows, cols, x, out),
  [GgmlType.BF16]: (w, bytes, rows, cols, x, out) =>
    matVecBf16(view(w, bytes, 2, (b, o, n) => new Uint16Array(b, o, n)), rows, cols, x, out),
};

/** out[r] = dot(row r of the `rows` x `cols` matrix in `weights`, x), x unrounded. */
export function matVecF32Activations(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
): void {
  const rowBytes = check(type, weights, rows, cols, x, cols, out, rows);
  if (!isSupportedWeightType(type)) {
    throw new Error(`matVec: unsupported tensor type ${ggmlTypeName(type)}`);
  }
  if (!isQuantWeightType(type)) {
    return FLOAT_KERNELS[type](weights, rows * rowBytes, rows, cols, x, out);
  }
  // f32 -> f64 is exact; the kernels take f64 so matVec can feed them decoded activations.
  if (xWide.length < cols) xWide = new Float64Array(cols);
  for (let j = 0; j < cols; j++) xWide[j] = x[j];
  matVecQuantF64(type, weights, rows, cols, xWide, out);
}

/**
 * out[v * rows + r] = dot(row r, xs[v * cols ..]) for v < n. Each weight row
 * is decoded once into a row-sized scratch and dotted with all n vectors, so
 * prefill and batched decode pay the decode cost once per row, not per vector.
 */
export function matVecBatchF32Activations(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  xs: Float32Array,
  n: number,
  out: Float32Array,
): void {
  const rowBytes = check(type, weights, rows, cols, xs, n * cols, out, n * rows);
  if (n === 1) return matVecF32Activations(type, weights, rows, cols, xs, out);
  if (rowScratch.length < cols) rowScratch = new Float32Array(cols);
  if (accScratch.length < n) accScratch = new Float64Array(n);
  const row = rowScratch;
  const acc = accScratch;
  const n4 = n & ~3;
  for (let r = 0; r < rows; r++) {
    dequantizeRow(type, weights.subarray(r * rowBytes, (r + 1) * rowBytes), cols, row, 0);
    // Four vectors per pass: each decoded weight is loaded once for four products.
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
    // Every vector's sum in column order, as the native kernel takes it (matmul-f32.c).
    for (let v = n4; v < n; v++) {
      const xo = v * cols;
      let a0 = 0;
      for (let j = 0; j < cols; j++) a0 += row[j] * xs[xo + j];
      acc[v] = a0;
    }
    for (let v = 0; v < n; v++) out[v * rows + r] = acc[v];
  }
}
