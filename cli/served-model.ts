/**
 * The model a serving node serves, sized before it is loaded: its GGUF header, what it needs at
 * `--ctx-size` and its sha256. Within `--max-memory` serve-command.ts loads it whole; over it the
 * node becomes a split stage candidate here (mesh/split-node.ts), loading only the layers its
 * plan gives it, and for a remote model fetching only their bytes.
 */
import { join } from "node:path";
import {
  type DownloadProgress,
  modelSha256,
  openPartialModel,
  type PartialModel,
  resolveModel,
} from "../models/mod.ts";
import {
  createLocalService,
  createSplitNode,
  type Identity,
  type LocalService,
  localStageCall,
  type SplitNode,
} from "../mesh/mod.ts";
import {
  availableMemory,
  chooseContextSize,
  type GgufFile,
  gpuContextSize,
  loadStageBatch,
  type ModelConfig,
  modelConfigOf,
  type ModelShape,
  modelShapeOf,
  openGguf,
  stageByteRanges,
  stageBytes,
  stageStateBytes,
  stageWeightBytes,
  tokenizerFromMetadata,
  warmUpStage,
} from "../inference/mod.ts";
import type { Logger } from "../protocol/mod.ts";

/** What sizing and loading a served model read of `grove serve`'s flags (or a runtime start). */
export interface ServedModelOptions {
  model: string;
  gpu: boolean;
  ctxSize?: number;
  maxMemory?: number;
  dataDir: string;
}

/** Told as the model file arrives and as it is hashed (the node API's start progress). */
export interface ServedModelProgress {
  onDownload?: (p: DownloadProgress) => void;
  onHash?: (hashed: number, total: number) => void;
}

/** What the GGUF's header says: enough to decide whether the model fits, before loading it. */
export interface ModelHeader {
  path: string;
  file: GgufFile;
  config: ModelConfig;
  ctxSize: number;
  /** Why this context: `--ctx-size`, the model's own length, or the largest that fits. */
  ctxReason: string;
  /**
   * The split planner's shape, its KV cache counted as f16 on every node: candidates plan alone
   * and must arrive at the same plan whichever engine each runs.
   */
  shape: ModelShape;
  /** This node's engine's shape: its KV cache as that engine stores it (the GPU's is f32). */
  engineShape: ModelShape;
  /** Weights, the engine's KV cache full at ctxSize and scratch: what `--max-memory` bounds. */
  wholeBytes: number;
  /** A remote model kept only in the byte ranges its stages need (models/partial-model.ts). */
  partial?: PartialModel;
}

/**
 * The header, at `--ctx-size` or else at the model's own length where this node's budget
 * (`--max-memory`, or the memory the machine has available) holds it whole, else the largest
 * context that fits (inference/context-size.ts).
 */
async function readModelHeader(
  path: string,
  opts: Pick<ServedModelOptions, "ctxSize" | "maxMemory" | "gpu">,
): Promise<ModelHeader> {
  const file = await openGguf(path);
  const config = modelConfigOf(file);
  const kvType = opts.gpu ? GPU_KV_TYPE : "f16";
  const budget = opts.maxMemory !== undefined
    ? { bytes: opts.maxMemory, source: "--max-memory" }
    : availableMemory();
  const choice = opts.ctxSize !== undefined
    ? { ctxSize: opts.ctxSize, reason: "--ctx-size" }
    : opts.gpu
    ? gpuContextSize(config)
    : chooseContextSize(file, config, budget, kvType);
  const engineShape = modelShapeOf(file, config, choice.ctxSize, kvType);
  return {
    path,
    file,
    config,
    ctxSize: choice.ctxSize,
    ctxReason: choice.reason,
    shape: kvType === PLAN_KV_TYPE
      ? engineShape
      : modelShapeOf(file, config, choice.ctxSize, PLAN_KV_TYPE),
    engineShape,
    wholeBytes: stageBytes(engineShape, 0, config.layers),
  };
}

/** How the WebGPU engine's KV cache stores keys and values (webgpu/kernels/attention.ts). */
const GPU_KV_TYPE = "f32";
/** How split plans count every stage's KV cache: the CPU engine's f16 (see ModelHeader.shape). */
const PLAN_KV_TYPE = "f16";

/**
 * What the node predicts it will hold, in words, with the parts the sum is made of: the
 * line a reader compares with the process's memory once the context has filled.
 */
export function memoryPrediction(header: ModelHeader): string {
  const { engineShape: shape, config, ctxSize } = header;
  const weights = stageWeightBytes(shape, 0, config.layers);
  const kv = stageStateBytes(shape, 0, config.layers);
  // The WebGPU batch binds, and so zero-fills, a slot's whole context at the slot's first use.
  const fills = shape.kvType === GPU_KV_TYPE
    ? "whole from a slot's first use"
    : "it grows as it fills";
  return `context ${ctxSize} tokens (${header.ctxReason}); the model needs ` +
    `${mib(header.wholeBytes)} whole: weights ${mib(weights)}, KV cache ${mib(kv)} ` +
    `(${shape.kvType ?? "f32"}, per sequence with the context full; ${fills}), ` +
    `scratch ${mib(shape.scratchBytes)}`;
}

/**
 * A model over this node's budget: the node becomes a split stage candidate. It loads no layer
 * now; it loads the range its plan gives it (mesh/split-node.ts) and coordinates the requests
 * that reach it through the plan's stages.
 */
export function splitModel(
  header: ModelHeader,
  opts: ServedModelOptions & { maxMemory: number },
  ids: { identity: Identity; modelId: string; modelName: string; sha256: string },
  log: Logger,
): { local: LocalService; split: SplitNode } {
  const { config, ctxSize, file, shape } = header;
  log.info(
    `${ids.modelId} needs ${mib(header.wholeBytes)} at ctx ${ctxSize}, over --max-memory ` +
      `${mib(opts.maxMemory)}: serving it as a split stage candidate (${config.layers} layers)`,
  );
  const split = createSplitNode({
    selfPeerId: ids.identity.peerId,
    sha256: ids.sha256,
    shape,
    budget: opts.maxMemory,
    ctxSize,
    vocabSize: config.vocabSize,
    log,
  }, {
    loadStage: async ([layerStart, layerEnd]) => {
      if (header.partial) await fetchStage(header.partial, header, [layerStart, layerEnd], log);
      const stage = await loadStageBatch({
        path: header.path,
        layerStart,
        layerEnd,
        ctxSize,
        gpu: opts.gpu,
      });
      if (opts.gpu) {
        // WebGPU builds its kernels on first use (seconds on a software adapter): before the
        // stage says it is ready, not in a coordinator's first step, whose deadline is 3 s.
        log.info("building the GPU kernels for this stage with a warm-up run");
        await warmUpStage(stage);
      }
      return stage;
    },
    localCall: localStageCall,
  });
  const model = {
    config,
    metadata: file.metadata,
    tokenizer: tokenizerFromMetadata(file.metadata),
    ctxSize,
  };
  const local = createLocalService({
    engine: model,
    batch: split.pipeline,
    id: ids.modelId,
    name: ids.modelName,
  });
  return { local, split };
}

/** A partial model's stage: only its layers' bytes are fetched, with progress in the log. */
async function fetchStage(
  partial: PartialModel,
  header: ModelHeader,
  [start, end]: [number, number],
  log: Logger,
) {
  const progress = byTenths((line) => log.info(`fetching layers ${start}–${end - 1}: ${line}`));
  await partial.ensure(stageByteRanges(header.file, header.config, start, end), {
    onProgress: ({ fetched, total, done }) => progress(fetched, total, done),
  });
}

/**
 * The model's header and sha256. A remote model not on this machine, over --max-memory and
 * from a server that answers ranges, is never downloaded whole: only its header now, each
 * stage's bytes when the plan gives the node a range. Anything else is resolved as before.
 */
export async function openServedModel(
  opts: ServedModelOptions,
  log: Logger,
  told: ServedModelProgress = {},
) {
  if (opts.maxMemory !== undefined) {
    const partial = await openPartialModel(opts.model);
    const header = partial && await readModelHeader(partial.path, opts);
    if (partial && header && header.wholeBytes > opts.maxMemory) {
      log.info(`${opts.model}: ${memoryPrediction(header)}`);
      log.info(
        `${opts.model} is not on this machine: fetching only the layers of this node's stage`,
      );
      return { header: { ...header, partial }, sha256: partial.sha256 };
    }
  }
  const resolved = await resolveModel(opts.model, { onProgress: told.onDownload });
  const header: ModelHeader = await readModelHeader(resolved.path, opts);
  log.info(`${opts.model}: ${memoryPrediction(header)}`);
  // Split candidates recognise the same model by it; kept per file in the node's data folder.
  // Hashing a large file takes a while the first time (then it is kept): say so.
  const progress = byTenths((line) => log.info(`hashing the model file (once): ${line}`));
  const sha256 = await modelSha256(resolved, {
    cacheDir: join(opts.dataDir, "models"),
    onProgress: ({ hashed, total, done }) => {
      progress(hashed, total, done);
      told.onHash?.(hashed, total);
    },
  });
  return { header, sha256 };
}

/** Progress as "N of M MiB", told once at each tenth: long work shows itself without a flood. */
function byTenths(tell: (line: string) => void) {
  let told = -1;
  return (done: number, total: number, finished: boolean) => {
    const tenth = finished || total === 0 ? 10 : Math.floor((done / total) * 10);
    if (tenth === told) return;
    told = tenth;
    tell(`${mib(done)} of ${mib(total)}`);
  };
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
