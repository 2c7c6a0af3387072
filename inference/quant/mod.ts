/** ggml weight types on the CPU: exact codecs and fused matrix-vector products. */
export { bytesFor, dequantize, dequantizeRow, quantize } from "./codec.ts";
export { f32ToFp16, fp16ToF32 } from "./fp16.ts";
export { KVALUES_IQ4NL } from "./iq4.ts";
export { KVALUES_MXFP4 } from "./mxfp4.ts";
export { bf16ToF32, f32ToBf16 } from "./bf16.ts";
export { matVec, matVecBatch } from "./matvec.ts";
export { matVecBatchF32Activations, matVecF32Activations } from "./matvec-f32-act.ts";
export {
  type ActivationForm,
  activationFormFor,
  type Activations,
  emptyActivations,
  quantizeActivations,
} from "./activations.ts";
export {
  hasWasmKernel,
  setWasmKernels,
  wasmKernelVariant,
  wasmThreads,
  wasmWeightBytes,
  wasmWeightsHeld,
} from "./wasm/mod.ts";
