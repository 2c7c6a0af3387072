/** WASM SIMD kernels for quantized matVec (kernels.c, built by build.ts). */
export {
  hasWasmKernel,
  type KernelVariant,
  matVecWasm,
  setWasmKernels,
  setWasmThreads,
  wasmKernelVariant,
  wasmThreads,
} from "./matvec-wasm.ts";
