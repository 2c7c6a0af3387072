/**
 * `grove serve`: a serving node (docs/http-api.md#flags). It loads a model, offers it to the mesh's
 * members and serves it on its own local /v1 too (a serving node is its own client; other models of
 * the mesh go through the mesh). Runs until SIGINT or SIGTERM.
 */
import { basename } from "node:path";
import { findCatalogEntry, installedModelHooks, parseModelRef } from "../models/mod.ts";
import {
  createLocalService,
  loadIdentity,
  type LocalService,
  type MeshRole,
  ServiceError,
  type SplitNode,
  startMeshRole,
} from "../mesh/mod.ts";
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
import { openServedModel, splitModel } from "./served-model.ts";

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
    node: { status: role.status, availability: role.availability, ...installedModelHooks() },
    local: local.view(),
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
