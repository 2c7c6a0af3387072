/** Native kernels: the WASM kernels' C source built for this CPU at install, through FFI. */
export {
  matMulF32Native,
  matVecNative,
  nativeKernels,
  nativeThreads,
  quantizeNative,
  setNativeKernels,
} from "./matvec-native.ts";
export { buildNative } from "./build.ts";
export {
  type AttentionRow,
  attentionRowsNative,
  type AttentionShape,
  nativeAttention,
} from "./attention-native.ts";
export { siluMulNative } from "./activation-native.ts";
