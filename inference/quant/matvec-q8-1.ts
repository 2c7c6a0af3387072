/**
 * Q5_1 weights against Q8_1 activations, the one pairing whose offset term
 * does not follow from the decoded activations: ggml adds min * s per block,
 * where `s` is f16(d * level sum) rounded by the activation quantizer, not
 * the rounded d times the level sum. So each row is decoded without its
 * mins (exactly, in f64), dotted with the decoded activations, and the mins
 * enter through the activations' `s`.
 */
import { decodeQ5_1 } from "./decode-f64-new.ts";
import { FP16_TO_F32 } from "./fp16.ts";

let rowScratch = new Float64Array(0);

/** out[v * rows + r] = ggml's Q5_1 x Q8_1 dot of row r with vector v (decoded in `xs`). */
export function matVecBatchQ5_1(
  w: Uint8Array,
  rows: number,
  cols: number,
  xs: Float64Array,
  s: Float32Array,
  n: number,
  out: Float32Array,
): void {
  const nb = cols >> 5;
  const rowBytes = nb * 24;
  if (rowScratch.length < cols) rowScratch = new Float64Array(cols);
  const row = rowScratch;
  for (let r = 0; r < rows; r++) {
    const o = r * rowBytes;
    decodeQ5_1(w, o, cols, row, false);
    for (let v = 0; v < n; v++) {
      const xo = v * cols, so = v * nb;
      let a0 = 0, a1 = 0;
      for (let j = 0; j < cols; j += 2) {
        a0 += row[j] * xs[xo + j];
        a1 += row[j + 1] * xs[xo + j + 1];
      }
      let mins = 0;
      for (let b = 0, m = o + 2; b < nb; b++, m += 24) {
        mins += FP16_TO_F32[w[m] | (w[m + 1] << 8)] * s[so + b];
      }
      out[v * rows + r] = a0 + a1 + mins;
    }
  }
}
