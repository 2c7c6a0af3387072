/** WASM SIMD kernels for quantized matVec (kernels.c, built by build.ts). */
export {
  hasWasmKernel,
  type KernelVariant,
  matVecWasm,
  quantizeWasm,
  setWasmKernels,
  setWasmThreads,
  wasmKernelVariant,
  wasmThreads,
  wasmWeightBytes,
  wasmWeightsHeld,
} from "./matvec-wasm.ts";
