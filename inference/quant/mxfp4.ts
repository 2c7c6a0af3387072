/**
 * MXFP4 (ggml-common.h `block_mxfp4`, the OCP microscaling format): 32 values
 * in 17 bytes, an E8M0 exponent `e` then 16 bytes of E2M1 nibbles laid out as
 * Q4_0's (byte j: value j low, j+16 high). ggml keeps the E2M1 values doubled
 * as int8 (`kvalues_mxfp4`) and halves the scale instead:
 * value = kvalues[q] * 2^(e - 128). Mirrors `quantize_row_mxfp4_ref` /
 * `dequantize_row_mxfp4`.
 */
export const QK_MXFP4 = 32;
export const MXFP4_BYTES = 17;

/** E2M1 values, doubled (ggml's kvalues_fp4). */
// deno-fmt-ignore
export const KVALUES_MXFP4: Int8Array = new Int8Array([
  0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
]);

const fr = Math.fround;

/** ggml_e8m0_to_fp32_half: 2^(e - 128), subnormal below e = 2. */
export function e8m0Half(e: number): number {
  return 2 ** (e - 128);
}

export function dequantizeRowMxfp4(
  src: Uint8Array,
  n: number,
  dst: Float32Array,
  at: number,
): void {
  const nb = n / QK_MXFP4;
  for (let b = 0, o = 0, k = at; b < nb; b++, o += MXFP4_BYTES, k += QK_MXFP4) {
    const d = e8m0Half(src[o]);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 1 + j];
      dst[k + j] = KVALUES_MXFP4[q & 15] * d;
      dst[k + j + 16] = KVALUES_MXFP4[q >> 4] * d;
    }
  }
}

/** best_index_mxfp4: the first level nearest x at scale d (errors in f32). */
function bestIndex(x: number, d: number): number {
  let best = 0;
  let bestErr = Math.abs(fr(fr(KVALUES_MXFP4[0] * d) - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(fr(fr(KVALUES_MXFP4[i] * d) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

export function quantizeRowMxfp4(
  x: Float32Array,
  from: number,
  n: number,
  dst: Uint8Array,
  at: number,
): void {
  const nb = n / QK_MXFP4;
  for (let b = 0, i0 = from, o = at; b < nb; b++, i0 += QK_MXFP4, o += MXFP4_BYTES) {
    let amax = 0;
    for (let j = 0; j < QK_MXFP4; j++) amax = Math.max(amax, Math.abs(x[i0 + j]));
    // floorf(log2f(amax)) - 2 + 127, as a byte: log2f is correctly rounded to f32.
    const e = amax > 0 ? (Math.floor(fr(Math.log2(amax))) - 2 + 127) & 0xff : 0;
    const d = e8m0Half(e);
    dst[o] = e;
    for (let j = 0; j < 16; j++) {
      dst[o + 1 + j] = bestIndex(x[i0 + j], d) | (bestIndex(x[i0 + j + 16], d) << 4);
    }
  }
}
