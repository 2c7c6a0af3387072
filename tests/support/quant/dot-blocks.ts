/**
 * What every reference block dot (dot-q-0.ts, dot-q5.ts, dot-k.ts,
 * dot-k-low.ts, dot-iq4.ts) walks the same way: each weight row against each
 * of the `a.n` activation vectors while the row is in cache, its blocks
 * summed in order as ggml's ggml_vec_dot_* do. Only what one block adds
 * differs between the types.
 */
import { FP16_TO_F32 } from "../../../inference/quant/fp16.ts";

/** The little-endian f16 at byte `o` of `w`, as f32. */
export function f16At(w: Uint8Array, o: number): number {
  return FP16_TO_F32[w[o] | (w[o + 1] << 8)];
}

/**
 * out[v * rows + r] = the sum, in block order, of `block(o, y, yb)` over the
 * blocks of row r: `o` the block's first byte in the weights, `y` its first
 * value in activation vector v, `yb` the index of the activation block,
 * which covers the same `values` as the weight block of `bytes` bytes.
 */
export function dotBlocks(
  rows: number,
  cols: number,
  n: number,
  values: number,
  bytes: number,
  out: Float32Array,
  block: (o: number, y: number, yb: number) => number,
): void {
  const nb = cols / values;
  const rb = nb * bytes;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < n; v++) {
      let acc = 0;
      for (
        let b = 0, o = r * rb, y = v * cols, yb = v * nb;
        b < nb;
        b++, o += bytes, y += values, yb++
      ) {
        acc += block(o, y, yb);
      }
      out[v * rows + r] = acc;
    }
  }
}

/** The level sum of 32-value activation block `yb` (two of its 16-value sums). */
export function levelSum32(sums16: Int32Array, yb: number): number {
  return sums16[2 * yb] + sums16[2 * yb + 1];
}
