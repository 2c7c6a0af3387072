/**
 * The weight types the WGSL kernels (matvec, matmul, embed) decode: every
 * type the engines compute with, plus those whose kernels are written and
 * tested against the CPU codecs ahead of the engines taking them. Each
 * per-type table of the kernels is a Record over GpuWeightType, so the type
 * checker names a table that lacks a type. The WebGPU engine still loads
 * only the engines' own list (isSupportedWeightType in load-weights.ts).
 */
import {
  GgmlType,
  isSupportedWeightType,
  SUPPORTED_WEIGHT_TYPES,
  type WeightType,
} from "../ggml-type.ts";

const AHEAD = [
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.IQ4_NL,
  GgmlType.IQ4_XS,
  GgmlType.MXFP4,
] as const;

export type GpuWeightType = WeightType | typeof AHEAD[number];

export function isGpuWeightType(type: number): type is GpuWeightType {
  return isSupportedWeightType(type) || (AHEAD as readonly number[]).includes(type);
}

/** Every GpuWeightType once: what the kernel tests run over. */
export const GPU_WEIGHT_TYPES: readonly GpuWeightType[] = [
  ...new Set<GpuWeightType>([...SUPPORTED_WEIGHT_TYPES as readonly WeightType[], ...AHEAD]),
];
