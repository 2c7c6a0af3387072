/**
 * IEEE half precision as ggml converts it (ggml-impl.h): fp32 -> fp16 rounds to
 * nearest even with subnormals kept, overflow goes to infinity and every NaN
 * becomes the quiet NaN 0x7E00 with its sign; fp16 -> fp32 is exact.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** All 65536 halves as f32, built bit by bit so NaN payloads survive too. */
export const FP16_TO_F32: Float32Array = buildTable();

function buildTable(): Float32Array {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp === 0) {
      // Subnormal halves are exact multiples of 2^-24, all normal in f32.
      table[h] = (sign ? -mant : mant) * 2 ** -24;
      if (mant === 0) bits[h] = sign >>> 0; // keep -0
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return table;
}

export function fp16ToF32(h: number): number {
  return FP16_TO_F32[h & 0xffff];
}

/** The half nearest to `f` (first rounded to f32, as a C `float` argument would be). */
export function f32ToFp16(f: number): number {
  f32Scratch[0] = f;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to infinity
  if (abs >= 0x38800000) {
    // Normal half: drop 13 mantissa bits with round-to-nearest-even; a carry
    // into the exponent is exactly the right result.
    const rounded = abs + 0x0fff + ((abs >>> 13) & 1);
    return sign | ((rounded - 0x38000000) >>> 13);
  }
  // Subnormal or zero: count units of 2^-24, ties to even (1024 is the first normal).
  const units = Math.abs(f32Scratch[0]) * 16777216;
  let r = Math.round(units);
  if (r - units === 0.5 && (r & 1) === 1) r -= 1;
  return sign | r;
}

/** Stores the 16 bits `h` (an f16's or a bf16's) little-endian at dst[o], dst[o + 1]. */
export function putU16(dst: Uint8Array, o: number, h: number): void {
  dst[o] = h & 0xff;
  dst[o + 1] = h >> 8;
}

export function dequantizeRowF16(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  for (let i = 0, o = 0; i < n; i++, o += 2) dst[at + i] = FP16_TO_F32[src[o] | (src[o + 1] << 8)];
}

export function quantizeRowF16(
  src: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  for (let i = 0, o = at; i < n; i++, o += 2) putU16(dst, o, f32ToFp16(src[from + i]));
}
