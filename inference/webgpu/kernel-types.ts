/**
 * The weight types the WGSL kernels (matvec, matmul, embed) decode: all the
 * engines compute with (ggml-type.ts WEIGHT_TYPES, the one list). Each
 * per-type table of the kernels is a Record over GpuWeightType, so a type
 * added to that list makes the type checker name every kernel table that
 * still lacks it.
 */
import { isSupportedWeightType, SUPPORTED_WEIGHT_TYPES, type WeightType } from "../ggml-type.ts";

export type GpuWeightType = WeightType;

export function isGpuWeightType(type: number): type is GpuWeightType {
  return isSupportedWeightType(type);
}

/** What the kernel tests run over. */
export const GPU_WEIGHT_TYPES: readonly GpuWeightType[] =
  SUPPORTED_WEIGHT_TYPES as readonly WeightType[];
