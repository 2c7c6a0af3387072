/**
 * bfloat16 as ggml converts it (ggml-impl.h): the top half of an f32, rounded
 * to nearest even; NaNs are kept (payload truncated) and forced quiet.
 */
import { putU16 } from "./fp16.ts";

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** All 65536 bf16 values as f32: a table read is cheaper than bit casts in JS. */
export const BF16_TO_F32: Float32Array = (() => {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) bits[h] = (h << 16) >>> 0;
  return table;
})();

export function bf16ToF32(h: number): number {
  return BF16_TO_F32[h & 0xffff];
}

export function f32ToBf16(f: number): number {
  f32Scratch[0] = f;
  const u = u32Scratch[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 64;
  return (u + (0x7fff + ((u >>> 16) & 1))) >>> 16;
}

export function dequantizeRowBf16(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  for (let i = 0, o = 0; i < n; i++, o += 2) dst[at + i] = BF16_TO_F32[src[o] | (src[o + 1] << 8)];
}

export function quantizeRowBf16(
  src: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  for (let i = 0, o = at; i < n; i++, o += 2) {
    const h = f32ToBf16(src[from + i]);
    putU16(dst, o, h);
  }
}
