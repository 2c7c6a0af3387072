/**
 * `grove serve`: a serving node (docs/http-api.md#flags). It loads a model, offers it to the mesh's
 * members and serves it on its own local /v1 too (a serving node is its own client; other models of
 * the mesh go through the mesh). Runs until SIGINT or SIGTERM.
 */
import { basename, join } from "node:path";
import {
  findCatalogEntry,
  modelSha256,
  openPartialModel,
  parseModelRef,
  type PartialModel,
  resolveModel,
} from "../models/mod.ts";
import {
  createLocalService,
  createSplitNode,
  type Identity,
  loadIdentity,
  type LocalService,
  localStageCall,
  type MeshRole,
  ServiceError,
  type SplitNode,
  startMeshRole,
} from "../mesh/mod.ts";
import {
  type GgufFile,
  loadStageBatch,
  type ModelConfig,
  modelConfigOf,
  type ModelShape,
  modelShapeOf,
  openGguf,
  stageByteRanges,
  stageBytes,
  tokenizerFromMetadata,
  warmUpStage,
} from "../inference/mod.ts";
import type { Logger } from "../protocol/mod.ts";
import { createMetrics, createNodeApp } from "../web/mod.ts";
import { CliError } from "./cli-error.ts";
import { numberFlag, parseFlags } from "./flags.ts";
import { loadBatchedEngine } from "./load-model.ts";
import {
  exitNow,
  NODE_FLAGS,
  type NodeOptions,
  nodeOptions,
  parseSize,
  requireApiKeyBeyondLoopback,
  serveHttp,
  untilSignal,
} from "./node-flags.ts";
import { browserAccess } from "./node-access.ts";

const FLAGS = {
  ...NODE_FLAGS,
  model: { type: "string" },
  gpu: { type: "boolean" },
  "ctx-size": { type: "string" },
  "max-memory": { type: "string" },
} as const;

export interface ServeOptions extends NodeOptions {
  model: string;
  gpu: boolean; // the WebGPU engine instead of the CPU path
  ctxSize?: number;
  maxMemory?: number;
}

export function serveOptionsFromArgs(args: string[]): ServeOptions {
  const f = parseFlags(args, FLAGS);
  const ctx = f["ctx-size"];
  const node = nodeOptions(f);
  // A serving node's /v1 reaches the whole mesh as well as its own model.
  requireApiKeyBeyondLoopback(node, "the serving node's endpoint");
  return {
    ...node,
    model: f.model ?? "stories260K",
    gpu: f.gpu ?? false,
    ctxSize: ctx === undefined
      ? undefined
      : numberFlag("ctx-size", ctx, 0, (n) => Number.isInteger(n) && n > 0),
    maxMemory: f["max-memory"] === undefined ? undefined : parseSize("max-memory", f["max-memory"]),
  };
}

/** What members ask for: the catalog id or hf:// ref as given; a file's name, never its path. */
export function publicModelId(ref: string): string {
  const parsed = parseModelRef(ref);
  if (parsed.kind !== "path") return ref.trim();
  return basename(parsed.path).replace(/\.gguf$/i, "");
}

/** What the GGUF's header says: enough to decide whether the model fits, before loading it. */
interface ModelHeader {
  path: string;
  file: GgufFile;
  config: ModelConfig;
  ctxSize: number;
  shape: ModelShape;
  /** Weights, the f32 KV cache at ctxSize and scratch: what `--max-memory` bounds. */
  wholeBytes: number;
  /** A remote model kept only in the byte ranges its stages need (models/partial-model.ts). */
  partial?: PartialModel;
}

async function readModelHeader(path: string, ctxSize?: number): Promise<ModelHeader> {
  const file = await openGguf(path);
  const config = modelConfigOf(file);
  // The engines' default (inference/cpu-engine.ts): the model's own length, capped at 4096.
  const ctx = ctxSize ?? Math.min(config.contextLength, 4096);
  const shape = modelShapeOf(file, config, ctx);
  return {
    path,
    file,
    config,
    ctxSize: ctx,
    shape,
    wholeBytes: stageBytes(shape, 0, config.layers),
  };
}

/**
 * A model over this node's budget: the node becomes a split stage candidate. It loads no layer
 * now; it loads the range its plan gives it (mesh/split-node.ts) and coordinates the requests
 * that reach it through the plan's stages.
 */
function splitModel(
  header: ModelHeader,
  opts: ServeOptions & { maxMemory: number },
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
  const what = `layers ${start}–${end - 1}`;
  let logged = -1;
  await partial.ensure(stageByteRanges(header.file, header.config, start, end), {
    onProgress: ({ fetched, total, done }) => {
      // A line at each tenth: progress without a flood.
      const tenth = done || total === 0 ? 10 : Math.floor((fetched / total) * 10);
      if (tenth === logged) return;
      logged = tenth;
      log.info(`fetching ${what}: ${mib(fetched)} of ${mib(total)}`);
    },
  });
}

/**
 * The model's header and sha256. A remote model not on this machine, over --max-memory and
 * from a server that answers ranges, is never downloaded whole: only its header now, each
 * stage's bytes when the plan gives the node a range. Anything else is resolved as before.
 */
async function openServedModel(opts: ServeOptions, log: Logger) {
  if (opts.maxMemory !== undefined) {
    const partial = await openPartialModel(opts.model);
    const header = partial && await readModelHeader(partial.path, opts.ctxSize);
    if (partial && header && header.wholeBytes > opts.maxMemory) {
      log.info(
        `${opts.model} is not on this machine: fetching only the layers of this node's stage`,
      );
      return { header: { ...header, partial }, sha256: partial.sha256 };
    }
  }
  const resolved = await resolveModel(opts.model);
  const header: ModelHeader = await readModelHeader(resolved.path, opts.ctxSize);
  // Split candidates recognise the same model by it; kept per file in the node's data folder.
  const sha256 = await modelSha256(resolved, { cacheDir: join(opts.dataDir, "models") });
  return { header, sha256 };
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export interface RunningNode {
  url: string;
  modelId?: string;
  role: MeshRole;
  stop(): Promise<void>;
}

/** Loads the model, joins the mesh, listens on HTTP: a serving node, until stop(). */
export async function startServeNode(opts: ServeOptions, label = "node"): Promise<RunningNode> {
  const { log } = opts;
  const identity = await loadIdentity({ nsec: opts.nsec, dataDir: opts.dataDir, log });
  const modelId = publicModelId(opts.model);
  const { header, sha256 } = await openServedModel(opts, log);
  const catalogName = findCatalogEntry(modelId)?.name;
  const fileName = header.config.name !== header.config.arch ? header.config.name : "";
  const modelName = catalogName ?? (fileName || modelId);
  let local: LocalService;
  let split: SplitNode | undefined;
  if (opts.maxMemory !== undefined && header.wholeBytes > opts.maxMemory) {
    const ids = { identity, modelId, modelName, sha256 };
    ({ local, split } = splitModel(header, { ...opts, maxMemory: opts.maxMemory }, ids, log));
  } else {
    log.info(`loading ${modelId}`);
    const { engine, batch } = await loadBatchedEngine(header.path, {
      ctxSize: opts.ctxSize,
      gpu: opts.gpu,
      onWarmUp: () => log.info("building the GPU kernels with a warm-up run"),
    });
    log.info(`${modelId} runs on ${engine.info.backend} (${engine.info.adapter})`);
    local = createLocalService({ engine, batch, id: modelId, name: modelName });
  }
  const metrics = createMetrics();

  let role: MeshRole;
  try {
    role = await startMeshRole({
      mode: "serve",
      relayUrl: opts.relayUrl,
      identity,
      local: {
        service: local,
        modelId,
        modelName,
        capacity: { memoryBytes: opts.maxMemory ?? header.wholeBytes },
        sha256,
        split,
      },
      name: opts.name,
      log,
      quic: opts.quic,
      onServed: (r) => metrics.inference(r),
    });
  } catch (err) {
    // A serving node the relay refused has nothing to offer: it does not start.
    if (err instanceof ServiceError && err.code === "mesh_denied") throw new CliError(err.message);
    throw err;
  }
  const app = createNodeApp({
    service: role.service,
    apiKey: opts.apiKey,
    browser: browserAccess(opts),
    maxBody: opts.maxBody,
    mode: "serve",
    metrics,
    node: { status: role.status, availability: role.availability },
  });
  const http = serveHttp({ ...opts, label }, app.fetch);
  console.log(`serving ${modelId} as ${identity.npub} (peer ${identity.peerId})`);
  return {
    url: http.url,
    modelId,
    role,
    async stop() {
      await role.stop();
      await http.shutdown();
      local.close(); // the prompt worker, if a long prompt started one
      split?.stop();
    },
  };
}

export async function serveCommand(args: string[]): Promise<number> {
  const opts = serveOptionsFromArgs(args);
  const node = await startServeNode(opts);
  opts.log.info("grove serve ready", { model: node.modelId, url: `${node.url}/v1` });
  const signal = await untilSignal();
  opts.log.info(`got ${signal}, stopping`);
  await node.stop();
  opts.log.info("serving node stopped");
  return await exitNow(0);
}
