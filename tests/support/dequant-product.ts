/**
 * The CPU oracle of the GPU matrix kernels: out[t * rows + r] = dot(row r of
 * W, x_t) in f64 over the values `dequantize` decodes, for any type with a
 * codec (the fused CPU kernels cover only the types the engines take).
 */
import { type GgmlType, isSupportedWeightType } from "../../inference/ggml-type.ts";
import { dequantize, matVecBatchF32Activations } from "../../inference/quant/mod.ts";

export function referenceProduct(
  type: GgmlType,
  data: Uint8Array,
  rows: number,
  cols: number,
  xs: Float32Array,
  n: number,
): Float32Array {
  const out = new Float32Array(n * rows);
  if (isSupportedWeightType(type)) {
    matVecBatchF32Activations(type, data, rows, cols, xs, n, out);
    return out;
  }
  const w = dequantize(type, data, rows * cols);
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += w[r * cols + j] * xs[t * cols + j];
      out[t * rows + r] = s;
    }
  }
  return out;
}
