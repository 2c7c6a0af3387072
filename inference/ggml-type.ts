/**
 * ggml tensor types as GGUF stores them (the numeric codes are ggml's
 * `enum ggml_type`), with the block geometry every reader and kernel needs.
 */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

/** Elements per block and bytes per block (ggml's `blck_size`, `type_size`). */
export interface BlockGeometry {
  blockSize: number;
  typeSize: number;
}

const GEOMETRY = {
  [GgmlType.F32]: { blockSize: 1, typeSize: 4 },
  [GgmlType.F16]: { blockSize: 1, typeSize: 2 },
  [GgmlType.BF16]: { blockSize: 1, typeSize: 2 },
  [GgmlType.Q4_0]: { blockSize: 32, typeSize: 18 },
  [GgmlType.Q4_1]: { blockSize: 32, typeSize: 20 },
  [GgmlType.Q5_0]: { blockSize: 32, typeSize: 22 },
  [GgmlType.Q5_1]: { blockSize: 32, typeSize: 24 },
  [GgmlType.Q8_0]: { blockSize: 32, typeSize: 34 },
  [GgmlType.Q8_1]: { blockSize: 32, typeSize: 36 },
  [GgmlType.Q2_K]: { blockSize: 256, typeSize: 84 },
  [GgmlType.Q3_K]: { blockSize: 256, typeSize: 110 },
  [GgmlType.Q4_K]: { blockSize: 256, typeSize: 144 },
  [GgmlType.Q5_K]: { blockSize: 256, typeSize: 176 },
  [GgmlType.Q6_K]: { blockSize: 256, typeSize: 210 },
  [GgmlType.Q8_K]: { blockSize: 256, typeSize: 292 },
  [GgmlType.IQ4_NL]: { blockSize: 32, typeSize: 18 },
  [GgmlType.IQ4_XS]: { blockSize: 256, typeSize: 136 },
  [GgmlType.MXFP4]: { blockSize: 32, typeSize: 17 },
  [GgmlType.I8]: { blockSize: 1, typeSize: 1 },
  [GgmlType.I16]: { blockSize: 1, typeSize: 2 },
  [GgmlType.I32]: { blockSize: 1, typeSize: 4 },
  [GgmlType.I64]: { blockSize: 1, typeSize: 8 },
  [GgmlType.F64]: { blockSize: 1, typeSize: 8 },
} as const satisfies Partial<Record<GgmlType, BlockGeometry>>;

/**
 * The weight types Grove's engines compute with: the one list. Each table of
 * per-type kernels (the codecs and matVec kernels in quant/, the WGSL units in
 * webgpu/kernels/) is a Record over WeightType, FloatWeightType or
 * QuantWeightType, so a type added here makes the type checker name every
 * table that still lacks it.
 */
const WEIGHT_TYPES = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.IQ4_NL,
  GgmlType.IQ4_XS,
  GgmlType.MXFP4,
] as const;

export type WeightType = typeof WEIGHT_TYPES[number];

/** The block-quantized weight types (blocks of more than one value, from GEOMETRY). */
export type QuantWeightType = {
  [T in WeightType]: typeof GEOMETRY[T]["blockSize"] extends 1 ? never : T;
}[WeightType];

/** The weight types stored one value per element (f32, f16, bf16). */
export type FloatWeightType = Exclude<WeightType, QuantWeightType>;

export const SUPPORTED_WEIGHT_TYPES: readonly GgmlType[] = WEIGHT_TYPES;

export function ggmlTypeName(type: number): string {
  return GgmlType[type] ?? `unknown type ${type}`;
}

/** Geometry of a type, or undefined for a code ggml does not lay out in blocks we know. */
export function blockGeometry(type: number): BlockGeometry | undefined {
  return (GEOMETRY as Partial<Record<number, BlockGeometry>>)[type];
}

export function isSupportedWeightType(type: number): type is WeightType {
  return SUPPORTED_WEIGHT_TYPES.includes(type as GgmlType);
}

/** Whether `type` is a weight type stored in blocks of several values (Q8_0, Q4_K, ...). */
export function isQuantWeightType(type: number): type is QuantWeightType {
  return isSupportedWeightType(type) && GEOMETRY[type].blockSize > 1;
}

/** Bytes taken by `elements` values of `type`; throws when they do not fill whole blocks. */
export function byteLengthOf(type: number, elements: number): number {
  const g = blockGeometry(type);
  if (!g) throw new Error(`tensor type ${ggmlTypeName(type)} has no known block layout`);
  if (!Number.isInteger(elements) || elements < 0 || elements % g.blockSize !== 0) {
    throw new Error(
      `${elements} values of ${ggmlTypeName(type)} do not fill whole blocks of ${g.blockSize}`,
    );
  }
  return (elements / g.blockSize) * g.typeSize;
}
