/**
 * GELU as ggml's CPU backend computes it (ggml-cpu/vec.h with GGML_GELU_FP16, always defined):
 * the input rounded to f16 indexes a table of the tanh approximation, itself rounded to f16;
 * inputs at or beyond ±10 bypass the table (0 below, the input itself above).
 */
import { f32ToFp16, FP16_TO_F32 } from "./quant/fp16.ts";

const f = Math.fround;
const GELU_COEF_A = f(0.044715);
const SQRT_2_OVER_PI = f(0.79788456080286535587989211986876);

/** ggml_gelu_f32: 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²))) in f32 steps. */
export function geluF32(x: number): number {
  const inner = f(f(SQRT_2_OVER_PI * x) * f(1 + f(f(GELU_COEF_A * x) * x)));
  return f(f(f(0.5 * x) * f(1 + f(Math.tanh(inner)))));
}

let table: Float32Array | undefined;

/** ggml_table_gelu_f16 as f32: GELU of every half, rounded to a half. */
function geluTable(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = FP16_TO_F32[f32ToFp16(geluF32(FP16_TO_F32[h]))];
  return table;
}

/** GELU of an f32 activation, exactly as ggml_vec_gelu_f32 / ggml_vec_geglu_f32 take it. */
export function gelu(x: number): number {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  return geluTable()[f32ToFp16(x)];
}
