/** Model tooling: writing GGUF files, building test models, re-quantizing. */
export {
  arr,
  bool,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  inferKind,
  str,
  typedMetadata,
  TypedValue,
  u16,
  u32,
  u64,
  u8,
  writeGguf,
} from "./gguf-writer.ts";
export type { GgufContents, MetaValue, TensorSpec } from "./gguf-writer.ts";
export {
  buildTestModel,
  defaultVocabPath,
  parseTestModelArgs,
  planTensors,
  TEST_ARCHES,
  writeTestModel,
} from "./test-models.ts";
export type { TensorPlan, TestArch, TestModelOptions } from "./test-models.ts";
export {
  isQuantized,
  llamaFileType,
  QUANTIZE_TYPES,
  quantizeGguf,
  targetTypeFor,
} from "./quantize-gguf.ts";
export type { QuantizedTensor } from "./quantize-gguf.ts";
export { catalogIds, DEFAULT_MODEL_ID, findCatalogEntry } from "./catalog.ts";
export type { CatalogEntry } from "./catalog.ts";
export { ModelRefError, ModelResolveError, parseModelRef, resolveModel } from "./resolve.ts";
export { DownloadError, downloadFile } from "./download.ts";
