/**
 * Model reference → engine, with progress on stderr: what `generate`,
 * `tokenize` and `serve` share.
 */
import {
  type BatchedEngine,
  createBatchedCpuEngine,
  createBatchedWebGpuEngine,
  createCpuEngine,
  createWebGpuEngine,
  type Engine,
  releaseFreedHeap,
  warmUpBatch,
  warmUpEngine,
} from "../inference/mod.ts";
import { resolveModel } from "../models/mod.ts";
import { CliError } from "./cli-error.ts";

export interface LoadModelOptions {
  gpu?: boolean;
  ctxSize?: number;
  /** Told before the GPU kernels are built (a few seconds on a software adapter). */
  onWarmUp?: () => void;
}

export async function resolveModelPath(ref: string | undefined): Promise<string> {
  if (!ref) {
    throw new CliError("--model is required (a catalog id such as stories260K, hf://…, or a path)");
  }
  const { path } = await resolveModel(ref, {});
  return path;
}

export async function loadEngine(
  ref: string | undefined,
  options: LoadModelOptions = {},
): Promise<Engine> {
  const path = await resolveModelPath(ref);
  if (!options.gpu) return await createCpuEngine({ path, ctxSize: options.ctxSize });
  const engine = await createWebGpuEngine({ path, ctxSize: options.ctxSize });
  options.onWarmUp?.();
  await warmUpEngine(engine);
  return engine;
}

/** For serving: the engine plus its batched face, so concurrent requests share each step. */
export async function loadBatchedEngine(
  ref: string | undefined,
  options: LoadModelOptions & { maxSlots?: number } = {},
): Promise<BatchedEngine> {
  const path = await resolveModelPath(ref);
  const init = { path, ctxSize: options.ctxSize, maxSlots: options.maxSlots };
  if (!options.gpu) return await createBatchedCpuEngine(init);
  const loaded = await createBatchedWebGpuEngine(init);
  options.onWarmUp?.();
  await warmUpBatch(loaded.batch);
  releaseFreedHeap(); // what the adapter's shader compiler freed (llvmpipe: tens of MiB)
  return loaded;
}
