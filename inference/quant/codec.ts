/**
 * Type dispatch for converting whole rows between f32 and ggml's weight
 * layouts. Blocks never straddle rows, so rows are handled one at a time.
 */
import {
  byteLengthOf,
  GgmlType,
  ggmlTypeName,
  isSupportedWeightType,
  type WeightType,
} from "../ggml-type.ts";
import { dequantizeRowBf16, quantizeRowBf16 } from "./bf16.ts";
import { dequantizeRowF16, quantizeRowF16 } from "./fp16.ts";
import { dequantizeRowQ4_0, quantizeRowQ4_0 } from "./q4-0.ts";
import { dequantizeRowQ4_K, quantizeRowQ4_K } from "./q4-k.ts";
import { dequantizeRowQ5_K, quantizeRowQ5_K } from "./q5-k.ts";
import { dequantizeRowQ6_K, quantizeRowQ6_K } from "./q6-k.ts";
import { dequantizeRowQ8_0, quantizeRowQ8_0 } from "./q8-0.ts";
import { dequantizeRowQ5_0, dequantizeRowQ5_1, quantizeRowQ5_0, quantizeRowQ5_1 } from "./q5-0.ts";
import { dequantizeRowQ2_K, quantizeRowQ2_K } from "./q2-k.ts";
import { dequantizeRowQ3_K, quantizeRowQ3_K } from "./q3-k.ts";
import {
  dequantizeRowIq4Nl,
  dequantizeRowIq4Xs,
  quantizeRowIq4Nl,
  quantizeRowIq4Xs,
} from "./iq4.ts";
import { dequantizeRowMxfp4, quantizeRowMxfp4 } from "./mxfp4.ts";

type DequantizeFn = (src: Uint8Array, n: number, dst: Float32Array, at: number) => void;
type QuantizeFn = (x: Float32Array, from: number, n: number, dst: Uint8Array, at: number) => void;

function dequantizeRowF32(src: Uint8Array, n: number, dst: Float32Array, at: number): void {
  // A copy through bytes works whatever the source alignment.
  new Uint8Array(dst.buffer, dst.byteOffset + at * 4, n * 4).set(src.subarray(0, n * 4));
}

function quantizeRowF32(x: Float32Array, from: number, n: number, dst: Uint8Array, at: number) {
  dst.set(new Uint8Array(x.buffer, x.byteOffset + from * 4, n * 4), at);
}

const CODECS: Record<WeightType, { dequantize: DequantizeFn; quantize: QuantizeFn }> = {
  [GgmlType.F32]: { dequantize: dequantizeRowF32, quantize: quantizeRowF32 },
  [GgmlType.F16]: { dequantize: dequantizeRowF16, quantize: quantizeRowF16 },
  [GgmlType.BF16]: { dequantize: dequantizeRowBf16, quantize: quantizeRowBf16 },
  [GgmlType.Q8_0]: { dequantize: dequantizeRowQ8_0, quantize: quantizeRowQ8_0 },
  [GgmlType.Q4_0]: { dequantize: dequantizeRowQ4_0, quantize: quantizeRowQ4_0 },
  [GgmlType.Q4_K]: { dequantize: dequantizeRowQ4_K, quantize: quantizeRowQ4_K },
  [GgmlType.Q5_K]: { dequantize: dequantizeRowQ5_K, quantize: quantizeRowQ5_K },
  [GgmlType.Q6_K]: { dequantize: dequantizeRowQ6_K, quantize: quantizeRowQ6_K },
  [GgmlType.Q5_0]: { dequantize: dequantizeRowQ5_0, quantize: quantizeRowQ5_0 },
  [GgmlType.Q5_1]: { dequantize: dequantizeRowQ5_1, quantize: quantizeRowQ5_1 },
  [GgmlType.Q2_K]: { dequantize: dequantizeRowQ2_K, quantize: quantizeRowQ2_K },
  [GgmlType.Q3_K]: { dequantize: dequantizeRowQ3_K, quantize: quantizeRowQ3_K },
  [GgmlType.IQ4_NL]: { dequantize: dequantizeRowIq4Nl, quantize: quantizeRowIq4Nl },
  [GgmlType.IQ4_XS]: { dequantize: dequantizeRowIq4Xs, quantize: quantizeRowIq4Xs },
  [GgmlType.MXFP4]: { dequantize: dequantizeRowMxfp4, quantize: quantizeRowMxfp4 },
};

function codecOf(type: GgmlType) {
  if (!isSupportedWeightType(type)) {
    throw new Error(`quant: no codec for tensor type ${ggmlTypeName(type)}`);
  }
  return CODECS[type];
}

/** Bytes needed for `n` values of `type`; throws unless `n` fills whole blocks. */
export function bytesFor(type: GgmlType, n: number): number {
  return byteLengthOf(type, n);
}

/** Decodes the first `n` values of `src` into `dst[dstOffset..]`. */
export function dequantizeRow(
  type: GgmlType,
  src: Uint8Array,
  n: number,
  dst: Float32Array,
  dstOffset = 0,
): void {
  const codec = codecOf(type);
  const bytes = bytesFor(type, n);
  if (src.length < bytes) {
    throw new Error(
      `quant: ${n} values of ${ggmlTypeName(type)} need ${bytes} bytes, got ${src.length}`,
    );
  }
  if (dstOffset + n > dst.length) {
    throw new Error(`quant: destination holds ${dst.length} values, need ${dstOffset + n}`);
  }
  codec.dequantize(src, n, dst, dstOffset);
}

export function dequantize(type: GgmlType, src: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  dequantizeRow(type, src, n, out, 0);
  return out;
}

/** Encodes `src` (rows of `rowLength` values) in `type`, as ggml's reference quantizers do. */
export function quantize(type: GgmlType, src: Float32Array, rowLength: number): Uint8Array {
  const codec = codecOf(type);
  const rowBytes = bytesFor(type, rowLength);
  if (rowLength <= 0 || src.length % rowLength !== 0) {
    throw new Error(`quant: ${src.length} values are not whole rows of ${rowLength}`);
  }
  const rows = src.length / rowLength;
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) codec.quantize(src, r * rowLength, rowLength, out, r * rowBytes);
  return out;
}
