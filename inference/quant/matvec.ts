/**
 * out = W x for a row-major matrix W stored in a ggml weight type, computed
 * the way llama.cpp's CPU backend does: x is first converted to the weight
 * type's companion form (activations.ts: Q8_0 / Q8_K blocks, f16, bf16),
 * once per call. For the quantized types the rounded vector then goes
 * through the WASM SIMD kernels (wasm/kernels.c: ggml's integer block dots,
 * equal bit for bit to the references in tests/support/quant/) where the
 * runtime has WebAssembly SIMD and the weights fit its 4 GiB memory, or
 * through the same C built for this CPU where install built it (native/).
 * Otherwise it is decoded to its exact values q * d (in f64) and run through
 * the fused f64 kernels: every partial sum of integer multiples of one block
 * scale is exact in f64, so this gives ggml's integer block dots up to f64
 * rounding, at the speed of float kernels. Logits then follow llama.cpp's to
 * about f32 accumulation order instead of differing by the activation
 * rounding. matvec-f32-act.ts keeps the unrounded product.
 */
import { GgmlType, ggmlTypeName, isQuantWeightType, isSupportedWeightType } from "../ggml-type.ts";
import {
  activationBlockSize,
  activationFormFor,
  type Activations,
  emptyActivations,
  quantizeActivations,
} from "./activations.ts";
import { check, matVecBatchF32Activations } from "./matvec-f32-act.ts";
import { matVecBatchQuantF64 } from "./matvec-f64.ts";
import { matVecBatchQ5_1 } from "./matvec-q8-1.ts";
import { matMulF32Native, matVecNative, quantizeNative } from "./native/mod.ts";
import { matVecWasm, quantizeWasm } from "./wasm/mod.ts";

// Reused across calls: steady-state products allocate nothing big.
const scratch = emptyActivations();
let decoded = new Float64Array(0);

/** The exact values of q8_0 / q8_K activation levels: q * block scale, in f64. */
function decodeActivations(a: Activations, total: number): Float64Array {
  if (decoded.length < total) decoded = new Float64Array(total);
  const { qs, d } = a;
  const block = activationBlockSize(a.form);
  for (let i = 0, b = 0; i < total; i += block, b++) {
    const db = d[b];
    for (let j = i; j < i + block; j++) decoded[j] = qs[j] * db;
  }
  return decoded;
}

/** out[r] = dot(row r of the `rows` x `cols` matrix in `weights`, x), as llama.cpp computes it. */
export function matVec(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  out: Float32Array,
  sameInput = false,
): void {
  matVecBatch(type, weights, rows, cols, x, 1, out, sameInput);
}

// What `scratch` holds: the rounding of which input, so that products of one input by several
// matrices (q, k and v; gate and up) round it once.
let rounded: { xs: Float32Array; n: number; cols: number; form: string } | null = null;

/**
 * out[v * rows + r] = dot(row r, xs[v * cols ..]) for v < n. The n vectors are
 * converted once; each weight row is then dotted with all of them while it is
 * in cache, so prefill and batched decode read the weights once. Q4_0 (the
 * WASM grouped kernel) also decodes each weight block once per eight vectors;
 * the TypeScript kernels do so with four or more.
 */
export function matVecBatch(
  type: GgmlType,
  weights: Uint8Array,
  rows: number,
  cols: number,
  xs: Float32Array,
  n: number,
  out: Float32Array,
  sameInput = false,
): void {
  check(type, weights, rows, cols, xs, n * cols, out, n * rows);
  if (!isSupportedWeightType(type)) {
    throw new Error(`matVec: unsupported tensor type ${ggmlTypeName(type)}`);
  }
  if (!isQuantWeightType(type)) {
    rounded = null; // scratch is about to hold this input's float form
    // F32 prefill natively where it runs: the same sums as matVecBatchF32Activations.
    if (type === GgmlType.F32 && n > 1 && matMulF32Native(weights, rows, cols, xs, n, out)) return;
    // Float weights: x rounded to f16 / bf16 as llama.cpp does, f32 as it is.
    const x = activationFormFor(type) === "f32"
      ? xs
      : quantizeActivations(type, xs, cols, n, scratch).values;
    return matVecBatchF32Activations(type, weights, rows, cols, x, n, out);
  }
  // The same rounding in C where the kernels run (native, else WASM), else in TypeScript;
  // none where the caller says `xs` is unchanged since the last product rounded it.
  const form = activationFormFor(type);
  const r = rounded;
  const reuse = sameInput && r !== null && r.xs === xs && r.n === n && r.cols === cols &&
    r.form === form;
  const a = reuse ? scratch : quantizeNative(type, xs, cols, n, scratch) ??
    quantizeWasm(type, xs, cols, n, scratch) ??
    quantizeActivations(type, xs, cols, n, scratch);
  rounded = { xs, n, cols, form };
  if (matVecNative(type, weights, rows, cols, a, out, reuse)) return;
  if (matVecWasm(type, weights, rows, cols, a, out)) return;
  if (a.form === "q8_1") {
    return matVecBatchQ5_1(weights, rows, cols, decodeActivations(a, n * cols), a.s, n, out);
  }
  return matVecBatchQuantF64(type, weights, rows, cols, decodeActivations(a, n * cols), n, out);
}
