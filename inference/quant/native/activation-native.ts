/**
 * SwiGLU's gate in native code (activation.c): gate[i] = silu(gate[i]) * up[i], eight values
 * at a time with its own f64 exp, where the TypeScript loop pays a Math.exp call per value.
 * The f32 results equal the loop's except, in principle, where the f64 value lies within an
 * ulp or two of an f32 rounding boundary (none in activation-native.test.ts's 10^6 values).
 */
import { nativeRunValues, nativeSymbols } from "./matvec-native.ts";

/** silu(gate) · up over the first `count` values; false where the native kernels are off. */
export function siluMulNative(gate: Float32Array, up: Float32Array, count: number): boolean {
  const s = nativeSymbols();
  if (!s || count > gate.length || count > up.length) return false;
  if (!nativeRunValues("silu_mul_rows", count, up, null, null, null, gate)) {
    s.silu_mul_f32(gate, up, count);
  }
  return true;
}
