/**
 * The "rows4" weight layout for software adapters (llvmpipe): Q4_0 / Q4_K rows
 * regrouped, still quantized and byte for byte the same data, into an
 * rgba32uint texture whose texel component c holds a 32-bit word of row
 * 4g + c. Why, measured with tests/bench/webgpu-matvec.ts on llvmpipe: a
 * texel fetch is a vectorised gather, while a storage-buffer load becomes a
 * per-lane loop with a bounds check per component (~2x the cost per byte); and
 * with the four rows' words side by side the kernels get each word of 4 rows
 * in one fetch, with no shuffling of 18-byte blocks that straddle words.
 *
 * Texture row g = rows 4g .. 4g+3 (rows past the end are zero). Texel order
 * along a texture row, 9 texels per 64 values:
 *   Q4_0, per pair p of 18-byte blocks (values 64p ..):
 *     9p          scales: low half = d of block 2p, high half = d of block 2p+1
 *     9p + 1 + k  nibble word k (k < 4) of block 2p   (bytes 2+4k .. 5+4k)
 *     9p + 5 + k  nibble word k of block 2p+1
 *   Q4_K, per 144-byte super-block s (values 256s ..):
 *     36s         d | dmin << 16
 *     36s + 1..3  the 12 scale bytes as 3 words
 *     36s + 4 + i nibble word i (bytes 16+4i ..), i < 32
 * In both, word k of the 16 (Q4_0) or 32 (Q4_K) nibble bytes of a group holds
 * values 4k..4k+3 in its low nibbles and H+4k..H+4k+3 in its high nibbles,
 * H = 16 (Q4_0) or 32 (Q4_K): the kernels' x scaling depends only on H.
 */
import { GgmlType, ggmlTypeName, type QuantWeightType } from "../ggml-type.ts";
import { bytesFor } from "../quant/mod.ts";

/**
 * The types the layout (and its kernels) take, with H: values per half group,
 * a nibble word's high nibbles being this far past its low ones.
 */
const HALF: Partial<Record<QuantWeightType, number>> = {
  [GgmlType.Q4_0]: 16,
  [GgmlType.Q4_K]: 32,
};

/** H of `type` (see HALF). */
export function rows4Half(type: GgmlType): number {
  const half = HALF[type as QuantWeightType];
  if (half === undefined) throw new Error(`the rows4 layout has no ${ggmlTypeName(type)}`);
  return half;
}

/** Whether `type` rows of `cols` values fit the layout: whole 256-value steps. */
export function rows4LayoutSupports(type: GgmlType, cols: number): boolean {
  return HALF[type as QuantWeightType] !== undefined && cols > 0 && cols % 256 === 0;
}

/** Texels per texture row (4 matrix rows): 9 per 64 values. */
export function rows4Texels(cols: number): number {
  return (cols / 64) * 9;
}

/**
 * Rows firstRow .. firstRow + rows of `data` (whole encoded rows of `cols`
 * values) regrouped as the texture rows above, as u32 words (4 per texel).
 */
export function repackRows4(
  type: GgmlType,
  data: Uint8Array,
  cols: number,
  firstRow: number,
  rows: number,
): Uint32Array<ArrayBuffer> {
  if (!rows4LayoutSupports(type, cols)) {
    throw new Error(`the rows4 layout has no ${ggmlTypeName(type)} rows of ${cols} values`);
  }
  const rowBytes = bytesFor(type, cols);
  if (data.length < (firstRow + rows) * rowBytes) {
    throw new Error(
      `repackRows4: ${rows} rows from row ${firstRow} need more than ${data.length} bytes`,
    );
  }
  const texels = rows4Texels(cols);
  const groups = Math.ceil(rows / 4);
  const out = new Uint32Array(groups * texels * 4);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // Word order of one row, as byte offsets: the texel index is the position in this list.
  const order = wordOrder(type, cols);
  for (let r = 0; r < rows; r++) {
    const row = (firstRow + r) * rowBytes;
    const base = Math.floor(r / 4) * texels * 4 + (r % 4);
    for (let t = 0; t < texels; t++) {
      const at = order[t];
      // Q4_0 scale texels join two f16s 18 bytes apart; everything else is one aligned word.
      out[base + 4 * t] = at < 0
        ? view.getUint16(row - at - 1, true) | (view.getUint16(row - at - 1 + 18, true) << 16)
        : view.getUint32(row + at, true);
    }
  }
  return out;
}

/**
 * Byte offset in a row of each texel's word, or -(offset + 1) for a Q4_0
 * scale texel (the d at offset and the next block's d). Offsets of Q4_0 words
 * may be 2 mod 4: DataView reads them unaligned.
 */
function wordOrder(type: GgmlType, cols: number): Int32Array {
  const order = new Int32Array(rows4Texels(cols));
  let t = 0;
  if (type === GgmlType.Q4_0) {
    for (let p = 0; p < cols / 64; p++) {
      const b = 36 * p;
      order[t++] = -(b + 1);
      for (let k = 0; k < 4; k++) order[t++] = b + 2 + 4 * k;
      for (let k = 0; k < 4; k++) order[t++] = b + 20 + 4 * k;
    }
  } else {
    for (let s = 0; s < cols / 256; s++) {
      for (let i = 0; i < 36; i++) order[t++] = 144 * s + 4 * i;
    }
  }
  return order;
}
