/** The inference core: GGUF, tokenizers, templates, sampling and the engines. */
export * from "./ggml-type.ts";
export {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufError,
  GgufValueType,
  MIN_VALUE_BYTES,
  openGguf,
  readTensorData,
} from "./gguf.ts";
export type { GgufFile, GgufTensorInfo, GgufValue, GgufValueKind } from "./gguf.ts";
export { configFromMetadata, modelConfigOf, SUPPORTED_ARCHITECTURES } from "./model-config.ts";
export type { Architecture, ModelConfig } from "./model-config.ts";
export type { Engine, EngineInfo, Session, Stage, StageSession } from "./engine.ts";
export { createCpuEngine, createCpuStage } from "./cpu-engine.ts";
export {
  createWebGpuEngine,
  createWebGpuStage,
  GpuUnavailableError,
  releaseFreedHeap,
} from "./webgpu/mod.ts";
export type { WebGpuEngine, WebGpuStage } from "./webgpu/mod.ts";
export { generate } from "./generate.ts";
export type { GeneratedToken, GenerateOptions, GenerationResult } from "./generate.ts";
export { dequantize, matVec, matVecBatch, quantize } from "./quant/mod.ts";
export { createRng } from "./rng.ts";
export { createSampler } from "./sampler.ts";
export type {
  SampledToken,
  Sampler,
  SamplerInit,
  SamplerOptions,
  TokenLogprob,
} from "./sampler.ts";
// Tokenizers, chat templates and tool calls: the text face's list, kept once, so both faces
// export the same names.
export * from "./text.ts";
export { cpuEngineFromModel } from "./cpu-engine.ts";
export { embedSequence, l2Normalize, pooledHidden, POOLINGS, statedPooling } from "./embed.ts";
export type { EmbedOptions, Pooling } from "./embed.ts";
export { createBatchedCpuEngine, sessionBatch } from "./batch.ts";
export type { AcquireOptions, BatchedEngine, BatchEngine, BatchRow, StepOutput } from "./batch.ts";
export { createScheduler, QueueFullError } from "./scheduler.ts";
export type { ScheduledResult, ScheduleOptions, Scheduler } from "./scheduler.ts";
export { commonPrefix } from "./prefix-cache.ts";
export { createBatchedWebGpuEngine } from "./webgpu/batch-forward.ts";
export { warmUpBatch, warmUpEngine, warmUpStage } from "./warm-up.ts";
export { loadStageBatch } from "./stage-batch.ts";
export type { StageBatch, StageBatchInfo, StageBatchInit, StageRows } from "./stage-batch.ts";
export {
  activationBytes,
  kvBytesPerPosition,
  modelShapeOf,
  SCRATCH_ROWS,
  stageBytes,
  stageWeightBytes,
  wholeModelBytes,
} from "./model-shape.ts";
export type { ModelShape } from "./model-shape.ts";
export { stageStateBytes } from "./model-shape.ts";
export {
  availableMemory,
  chooseContextSize,
  CONTEXT_FLOOR,
  type ContextChoice,
  gpuContextSize,
} from "./context-size.ts";
export { stageByteRanges } from "./stage-ranges.ts";
export { isLocalLayer } from "./gemma3.ts";
export {
  createConstraint,
  GrammarError,
  jsonObjectGrammar,
  jsonSchemaGrammar,
  parseGbnf,
} from "./grammar/mod.ts";
export type { ConstraintState, Grammar } from "./grammar/mod.ts";
export type { ByteRange } from "./stage-ranges.ts";
