/**
 * The form llama.cpp's CPU backend converts activations to before a matrix
 * product (each weight type's `vec_dot_type` in ggml-cpu.c): Q8_0 blocks of 32
 * for Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4 weights, Q8_1 blocks of 32 (Q8_0's levels
 * plus each block's rounded level sum) for Q5_1, Q8_K blocks of 256 for the
 * K-quants and IQ4_XS, f16 or bf16 values for F16/BF16 weights, plain f32
 * otherwise. Reproducing this rounding
 * is what makes Grove's logits match llama.cpp's on quantized models.
 * The quantizers mirror `quantize_row_q8_0_ref`, `quantize_row_q8_1_ref` and
 * `quantize_row_q8_K_ref` (ggml-quants.c) operation by operation in f32.
 */
import { blockGeometry, GgmlType, isSupportedWeightType, type WeightType } from "../ggml-type.ts";
import { BF16_TO_F32, f32ToBf16 } from "./bf16.ts";
import { f32ToFp16, FP16_TO_F32 } from "./fp16.ts";

export type ActivationForm = "q8_0" | "q8_1" | "q8_K" | "f16" | "bf16" | "f32";

/** `n` activation vectors of `cols` values each, converted for one weight type. */
export interface Activations {
  form: ActivationForm;
  n: number;
  cols: number;
  /** q8 forms: the int8 levels, n * cols of them. */
  qs: Int8Array;
  /** q8 forms: the scale of each block (32 values for q8_0/q8_1, 256 for q8_K), as f32. */
  d: Float32Array;
  /** q8_1: each block's `s`, f16(unrounded d * sum of its levels), as f32. */
  s: Float32Array;
  /** q8 forms: the sum of each 16 levels (ggml's `bsums` for q8_K). */
  sums16: Int32Array;
  /** Float forms: the activations after rounding to the form (f32 for "f32"). */
  values: Float32Array;
}

const fr = Math.fround;

/** llama.cpp's vec_dot_type of each weight type, as Grove names the forms. */
const FORM: Record<WeightType, ActivationForm> = {
  [GgmlType.F32]: "f32",
  [GgmlType.F16]: "f16",
  [GgmlType.BF16]: "bf16",
  [GgmlType.Q8_0]: "q8_0",
  [GgmlType.Q4_0]: "q8_0",
  [GgmlType.Q4_K]: "q8_K",
  [GgmlType.Q5_K]: "q8_K",
  [GgmlType.Q6_K]: "q8_K",
  [GgmlType.Q5_0]: "q8_0",
  [GgmlType.Q5_1]: "q8_1",
  [GgmlType.Q2_K]: "q8_K",
  [GgmlType.Q3_K]: "q8_K",
  [GgmlType.IQ4_NL]: "q8_0",
  [GgmlType.IQ4_XS]: "q8_K",
  [GgmlType.MXFP4]: "q8_0",
};

/** The ggml type each form is: its blocks are that type's. */
const FORM_TYPE: Record<ActivationForm, GgmlType> = {
  q8_0: GgmlType.Q8_0,
  q8_1: GgmlType.Q8_1,
  q8_K: GgmlType.Q8_K,
  f16: GgmlType.F16,
  bf16: GgmlType.BF16,
  f32: GgmlType.F32,
};

/** llama.cpp's vec_dot_type for a weight type (f32 for types Grove does not compute with). */
export function activationFormFor(weightType: GgmlType): ActivationForm {
  return isSupportedWeightType(weightType) ? FORM[weightType] : "f32";
}

/** Values per block of a form: one scale per 32 (q8_0) or 256 (q8_K) levels, else 1. */
export function activationBlockSize(form: ActivationForm): number {
  return blockGeometry(FORM_TYPE[form])!.blockSize;
}

/** An empty holder, to pass as `into` so repeated calls reuse its buffers. */
export function emptyActivations(): Activations {
  return {
    form: "f32",
    n: 0,
    cols: 0,
    qs: new Int8Array(0),
    d: new Float32Array(0),
    s: new Float32Array(0),
    sums16: new Int32Array(0),
    values: new Float32Array(0),
  };
}

/**
 * Converts `n` vectors of `cols` values (consecutive in `x`) to the form
 * llama.cpp uses against `weightType`. Buffers of `into` are reused when large
 * enough, so a caller holding one holder allocates only while sizes grow.
 */
export function quantizeActivations(
  weightType: GgmlType,
  x: Float32Array,
  cols: number,
  n = 1,
  into: Activations = emptyActivations(),
): Activations {
  const form = activationFormFor(weightType);
  const total = n * cols;
  if (x.length < total) {
    throw new Error(`quantizeActivations: ${n}x${cols} needs ${total} values, got ${x.length}`);
  }
  const block = activationBlockSize(form);
  if (cols % block !== 0) {
    throw new Error(`quantizeActivations: ${form} needs whole blocks of ${block}, got ${cols}`);
  }
  into.form = form;
  into.n = n;
  into.cols = cols;
  if (form === "q8_0" || form === "q8_1" || form === "q8_K") {
    if (into.qs.length < total) into.qs = new Int8Array(total);
    if (into.d.length < total / block) into.d = new Float32Array(total / block);
    if (into.sums16.length < total / 16) into.sums16 = new Int32Array(total / 16);
    if (form === "q8_K") quantizeQ8_K(x, total, into.qs, into.d);
    else quantizeQ8_0(x, total, into.qs, into.d);
    const { qs, sums16 } = into;
    for (let g = 0, i = 0; g < total / 16; g++, i += 16) {
      let s = 0;
      for (let j = i; j < i + 16; j++) s += qs[j];
      sums16[g] = s;
    }
    if (form === "q8_1") {
      if (into.s.length < total / 32) into.s = new Float32Array(total / 32);
      blockSumsQ8_1(x, total, sums16, into.s);
    }
    return into;
  }
  if (into.values.length < total) into.values = new Float32Array(total);
  const v = into.values;
  if (form === "f16") { for (let i = 0; i < total; i++) v[i] = FP16_TO_F32[f32ToFp16(x[i])]; }
  else if (form === "bf16") { for (let i = 0; i < total; i++) v[i] = BF16_TO_F32[f32ToBf16(x[i])]; }
  else v.set(x.subarray(0, total));
  return into;
}

/** quantize_row_q8_0_ref: d = amax / 127 kept as f16, q = roundf(x / d), halves away from 0. */
function quantizeQ8_0(x: Float32Array, total: number, qs: Int8Array, ds: Float32Array): void {
  for (let b = 0, i0 = 0; i0 < total; b++, i0 += 32) {
    let amax = 0;
    for (let j = i0; j < i0 + 32; j++) amax = Math.max(amax, Math.abs(x[j]));
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    ds[b] = FP16_TO_F32[f32ToFp16(d)];
    for (let j = i0; j < i0 + 32; j++) {
      const v = fr(x[j] * id);
      qs[j] = v < 0 ? -Math.round(-v) : Math.round(v);
    }
  }
}

/**
 * quantize_row_q8_1_ref's `s`: its levels are Q8_0's; s = f16(sum * d) with d
 * = amax / 127 before its own f16 rounding.
 */
function blockSumsQ8_1(x: Float32Array, total: number, sums16: Int32Array, s: Float32Array) {
  for (let b = 0, i0 = 0; i0 < total; b++, i0 += 32) {
    let amax = 0;
    for (let j = i0; j < i0 + 32; j++) amax = Math.max(amax, Math.abs(x[j]));
    const d = fr(amax / 127);
    s[b] = FP16_TO_F32[f32ToFp16(fr((sums16[2 * b] + sums16[2 * b + 1]) * d))];
  }
}

/**
 * quantize_row_q8_K_ref: the scale comes from the signed value of largest
 * magnitude (first one wins), iscale = -127 / max; levels round half to even
 * (ggml's nearest_int) and are capped at 127; d = 1 / iscale in f32.
 */
function quantizeQ8_K(x: Float32Array, total: number, qs: Int8Array, ds: Float32Array): void {
  for (let b = 0, i0 = 0; i0 < total; b++, i0 += 256) {
    let max = 0;
    let amax = 0;
    for (let j = i0; j < i0 + 256; j++) {
      const ax = Math.abs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax === 0) {
      ds[b] = 0;
      qs.fill(0, i0, i0 + 256);
      continue;
    }
    const iscale = fr(-127 / max);
    for (let j = i0; j < i0 + 256; j++) {
      const v = fr(iscale * x[j]);
      let r = Math.round(v);
      if (r - v === 0.5 && (r & 1) !== 0) r -= 1;
      qs[j] = Math.min(127, r);
    }
    ds[b] = fr(1 / iscale);
  }
}
