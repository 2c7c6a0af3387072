/**
 * The real parts behind a node's runtime (node-runtime.ts): a client role is only a mesh join; a
 * serving role opens its model (downloading and hashing it when needed), loads it whole or as a
 * split stage candidate, and joins the mesh offering it, as `grove serve` always has.
 */
import { basename } from "node:path";
import {
  createProgressReporter,
  type DownloadProgress,
  findCatalogEntry,
  parseModelRef,
} from "../models/mod.ts";
import {
  createLocalService,
  type Identity,
  type LocalService,
  type MeshRole,
  ServiceError,
  type SplitNode,
  startMeshRole,
} from "../mesh/mod.ts";
import type { Logger } from "../protocol/mod.ts";
import type { createMetrics } from "../web/mod.ts";
import { CliError } from "./cli-error.ts";
import { loadBatchedEngine } from "./load-model.ts";
import type { PreparedRuntime, Progress, RuntimeParts, RuntimeRole } from "./node-runtime.ts";
import type { Gate } from "./runtime-gate.ts";
import { openServedModel, splitModel } from "./served-model.ts";

export interface MeshPartsInit {
  identity: Identity;
  relayUrl: string;
  dataDir: string;
  log: Logger;
  name?: string;
  quic?: boolean;
  /** `--mesh-host`: where libp2p listens (default loopback). */
  meshHost?: string;
  /** `--ctx-size` of `grove serve`; the engines' default elsewhere. */
  ctxSize?: number;
  /** Counts the requests this node serves for peers. */
  metrics: ReturnType<typeof createMetrics>;
}

/** A runtime role is a mesh role, with the mesh's own admission answer kept for the CLI. */
export interface MeshRuntimeRole extends RuntimeRole {
  mesh: MeshRole;
}

/** What members ask for: the catalog id or hf:// ref as given; a file's name, never its path. */
export function publicModelId(ref: string): string {
  const parsed = parseModelRef(ref);
  if (parsed.kind !== "path") return ref.trim();
  return basename(parsed.path).replace(/\.gguf$/i, "");
}

export function meshRuntimeParts(init: MeshPartsInit): RuntimeParts {
  return {
    prepare(req, { gate, progress }) {
      if (req.mode === "client") {
        return Promise.resolve({
          modelId: null,
          modelName: null,
          join: () => joinClient(init),
          discard() {},
        });
      }
      if (!req.modelId) throw new Error("serving needs a model: modelId is missing");
      return prepareServe(init, { ...req, modelId: req.modelId }, gate, progress);
    },
  };
}

async function joinClient(init: MeshPartsInit): Promise<MeshRuntimeRole> {
  const mesh = await startMeshRole({
    mode: "client",
    relayUrl: init.relayUrl,
    identity: init.identity,
    name: init.name,
    log: init.log,
    quic: init.quic,
    listenHost: init.meshHost,
  });
  return {
    mesh,
    service: mesh.service,
    status: mesh.status,
    availability: mesh.availability,
    stop: mesh.stop,
  };
}

async function prepareServe(
  init: MeshPartsInit,
  req: { modelId: string; maxMemory?: number; gpu?: boolean },
  gate: Gate,
  progress: (p: Progress) => void,
): Promise<PreparedRuntime> {
  const { log, identity } = init;
  const opts = {
    model: req.modelId,
    maxMemory: req.maxMemory,
    ctxSize: init.ctxSize,
    dataDir: init.dataDir,
    gpu: req.gpu ?? false,
  };
  const modelId = publicModelId(req.modelId);
  const { header, sha256 } = await openServedModel(opts, log, {
    onDownload: downloadProgress(progress),
    onHash: (hashed, total) => progress({ phase: "hashing", bytes: hashed, total }),
  });
  progress({ phase: "loading" });
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
      ctxSize: header.ctxSize, // chosen and told in openServedModel (served-model.ts)
      gpu: opts.gpu,
      onWarmUp: () => log.info("building the GPU kernels with a warm-up run"),
    });
    log.info(`${modelId} runs on ${engine.info.backend} (${engine.info.adapter})`);
    local = createLocalService({ engine, batch, id: modelId, name: modelName });
  }
  const free = () => {
    local.close(); // the prompt worker, if a long prompt started one
    split?.stop();
  };
  return {
    modelId,
    modelName,
    discard: free,
    async join(): Promise<MeshRuntimeRole> {
      let mesh: MeshRole;
      try {
        mesh = await startMeshRole({
          mode: "serve",
          relayUrl: init.relayUrl,
          identity,
          local: {
            // Peers' requests go through the runtime's gate too, so a stop drains them.
            service: gate.wrap(local),
            modelId,
            modelName,
            capacity: { memoryBytes: opts.maxMemory ?? header.wholeBytes },
            sha256,
            split,
          },
          name: init.name,
          log,
          quic: init.quic,
          listenHost: init.meshHost,
          onServed: (r) => init.metrics.inference(r),
        });
      } catch (err) {
        // A serving node the relay refused has nothing to offer: it does not start.
        if (err instanceof ServiceError && err.code === "mesh_denied") {
          throw new CliError(err.message);
        }
        throw err;
      }
      return {
        mesh,
        service: mesh.service,
        local: local.view(),
        status: mesh.status,
        availability: mesh.availability,
        async stop() {
          await mesh.stop();
          free();
        },
      };
    },
  };
}

/**
 * A download's bytes, rate and time left for /api/status, and the progress bar on stderr the
 * command line has always shown.
 */
function downloadProgress(progress: (p: Progress) => void) {
  let bar: ((p: DownloadProgress) => void) | undefined;
  let first: { at: number; received: number } | undefined;
  return (p: DownloadProgress) => {
    bar ??= createProgressReporter({ label: basename(new URL(p.url).pathname) });
    bar(p);
    const now = performance.now();
    first ??= { at: now, received: p.received };
    const seconds = (now - first.at) / 1000;
    const rate = seconds > 0 ? (p.received - first.received) / seconds : undefined;
    const left = p.total !== undefined ? p.total - p.received : undefined;
    progress({
      phase: "downloading",
      bytes: p.received,
      total: p.total,
      rate,
      eta: rate && left !== undefined ? Math.round(left / rate) : undefined,
    });
  };
}
