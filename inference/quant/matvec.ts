/**
 * out = W x for a row-major matrix W stored in a ggml weight type, computed
 * the way llama.cpp's CPU backend does: x is first converted to the weight
 * type's companion form (activations.ts: Q8_0 / Q8_K blocks, f16, bf16),
 * once per call, then each row is dotted with it from the encoded blocks, in
 * exact integer arithmetic for the quantized types. Logits then follow
 * llama.cpp's to about f32 accumulation order instead of differing by the
 * activation rounding. matvec-f32-act.ts keeps the unrounded product.
 */
import { GgmlType, ggmlTypeName } from "../ggml-type.ts";
import { emptyActivations, quantizeActivations } from "./activations.ts";
import { dotQ4_K, dotQ5_K, dotQ6_K } from "./dot-k.ts";
import { dotQ4_0, dotQ8_0 } from "./dot-q-0.ts";
import { check, matVecBatchF32Activations } from "./matvec-f32-act.ts";

// Reused across calls: steady-state products allocate nothing big.
const scratch = emptyActivations();

/** out[r] = dot(row r of the `rows` x `cols` matrix in `weights`, x), as llama.cpp computes it. */
export function matVec(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
): void {
  matVecBatch(type, weights, rows, cols, x, 1, out);
}

/**
 * out[v * rows + r] = dot(row r, xs[v * cols ..]) for v < n. The n vectors are
 * converted once, and each weight row is dotted with all of them while it is
 * in cache, so prefill reads the weights once.
 */
export function matVecBatch(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  xs: Float32Array,
  n: number,
  out: Float32Array,
): void {
  const rowBytes = check(type, weights, rows, cols, xs, n * cols, out, n * rows);
  switch (type) {
    case GgmlType.F32:
      return matVecBatchF32Activations(type, weights, rows, cols, xs, n, out);
    case GgmlType.F16:
    case GgmlType.BF16: {
      const a = quantizeActivations(type, xs, cols, n, scratch);
      return matVecBatchF32Activations(type, weights, rows, cols, a.values, n, out);
    }
  }
  const bytes = rows * rowBytes;
  const signed = () => new Int8Array(weights.buffer, weights.byteOffset, bytes);
  switch (type) {
    case GgmlType.Q8_0:
      return dotQ8_0(
        weights,
        signed(),
        rows,
        cols,
        quantizeActivations(type, xs, cols, n, scratch),
        out,
      );
    case GgmlType.Q4_0:
      return dotQ4_0(weights, rows, cols, quantizeActivations(type, xs, cols, n, scratch), out);
    case GgmlType.Q4_K:
      return dotQ4_K(weights, rows, cols, quantizeActivations(type, xs, cols, n, scratch), out);
    case GgmlType.Q5_K:
      return dotQ5_K(weights, rows, cols, quantizeActivations(type, xs, cols, n, scratch), out);
    case GgmlType.Q6_K:
      return dotQ6_K(
        weights,
        signed(),
        rows,
        cols,
        quantizeActivations(type, xs, cols, n, scratch),
        out,
      );
    default:
      throw new Error(`matVec: unsupported tensor type ${ggmlTypeName(type)}`);
  }
}
