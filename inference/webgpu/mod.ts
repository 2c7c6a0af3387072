/** The WebGPU engine: device setup, Grove's WGSL kernels and the GPU forward pass. */
export { GpuUnavailableError, requestGpu } from "./device.ts";
export type { Gpu, GpuOptions } from "./device.ts";
export { createWebGpuEngine } from "./webgpu-engine.ts";
export type { WebGpuEngine, WebGpuEngineInit, WebGpuSession } from "./webgpu-engine.ts";
export { createWebGpuStage } from "./webgpu-stage.ts";
export { releaseFreedHeap } from "./release-heap.ts";
export type { WebGpuStage, WebGpuStageSession } from "./webgpu-stage.ts";
