/** WASM SIMD kernels for quantized matVec (kernels.c, built by build.ts). */
export {
  hasWasmKernel,
  type KernelVariant,
  matVecWasm,
  setWasmKernels,
  wasmKernelVariant,
} from "./matvec-wasm.ts";
