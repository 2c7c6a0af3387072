/** WASM SIMD kernels for quantized matVec (kernels.c, built by build.ts). */
export {
  hasWasmKernel,
  type KernelVariant,
  matVecWasm,
  setWasmKernels,
  setWasmThreads,
  wasmKernelVariant,
  wasmThreads,
  wasmWeightBytes,
  wasmWeightsHeld,
} from "./matvec-wasm.ts";
