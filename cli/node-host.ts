/**
 * A node process (serve, consume, demo's nodes): its key, its runtime (node-runtime.ts) and the
 * HTTP listener that outlives every runtime. The command's first start runs before the listener
 * opens, as it always has (a failed one ends the process with its error); later starts and
 * stops come from the node API and leave the process up, `failed` with the reason when a start
 * fails.
 */
import { type Identity, loadIdentity } from "../mesh/mod.ts";
import { installedModelHooks } from "../models/mod.ts";
import { createMetrics, createNodeApp } from "../web/mod.ts";
import { browserAccess } from "./node-access.ts";
import { memberHooks } from "./member-hooks.ts";
import { type NodeOptions, serveHttp } from "./node-flags.ts";
import {
  createNodeRuntime,
  type NodeRuntime,
  OFF_MESSAGE,
  type RuntimeRequest,
  type RuntimeView,
  STOPPING_MESSAGE,
} from "./node-runtime.ts";
import { meshRuntimeParts, type MeshRuntimeRole } from "./runtime-roles.ts";

type AppDeps = Parameters<typeof createNodeApp>[0];
type HealthState = ReturnType<NonNullable<AppDeps["health"]>>;

export interface NodeHostOptions extends NodeOptions {
  /** `grove serve`'s --ctx-size, --gpu and --max-memory: the defaults of API starts too. */
  ctxSize?: number;
  gpu?: boolean;
  maxMemory?: number;
  /** How long a stop lets requests finish (default node-runtime.ts's DRAIN_MS). */
  drainMs?: number;
}

export interface RunningNode {
  url: string;
  /** The model the first start serves (serve mode). */
  modelId?: string;
  identity: Identity;
  runtime: NodeRuntime;
  stop(): Promise<void>;
}

/** Starts the runtime as `first` asks, then listens on HTTP; throws what a failed start threw. */
export async function startNodeHost(
  opts: NodeHostOptions,
  first: RuntimeRequest,
  label = "node",
): Promise<RunningNode> {
  const { log } = opts;
  const identity = await loadIdentity({ nsec: opts.nsec, dataDir: opts.dataDir, log });
  const metrics = createMetrics();
  const runtime = createNodeRuntime(
    meshRuntimeParts({
      identity,
      relayUrl: opts.relayUrl,
      dataDir: opts.dataDir,
      log,
      name: opts.name,
      quic: opts.quic,
      meshHost: opts.meshHost,
      ctxSize: opts.ctxSize,
      metrics,
    }),
    { mode: first.mode, drainMs: opts.drainMs },
  );
  await runtime.start(first).done;
  const app = createNodeApp({
    service: runtime.service,
    apiKey: opts.apiKey,
    browser: browserAccess(opts),
    maxBody: opts.maxBody,
    mode: first.mode,
    metrics,
    health: () => runtimeHealth(runtime.view()),
    node: {
      ...installedModelHooks(),
      ...memberHooks(opts, identity),
      status: () => runtimeStatus(runtime, identity, opts.relayUrl),
      availability: () => runtimeAvailability(runtime),
      start(o) {
        const t = runtime.start({
          ...o,
          gpu: o.gpu ?? opts.gpu,
          maxMemory: o.maxMemory ?? opts.maxMemory,
        });
        t.done.then(
          () => log.info("node runtime running", { mode: o.mode, model: runtime.view().modelId }),
          (err) => log.warn(`the node failed to start: ${errorText(err)}`),
        );
        return { state: t.state };
      },
      stop() {
        const t = runtime.stop();
        t.done.then(
          () => log.info("node runtime off"),
          (err) => log.warn(`the node failed to stop cleanly: ${errorText(err)}`),
        );
        return { state: t.state };
      },
    },
    get local() {
      return runtime.local();
    },
  });
  const http = serveHttp({ ...opts, label }, app.fetch);
  return {
    url: http.url,
    modelId: runtime.view().modelId ?? undefined,
    identity,
    runtime,
    async stop() {
      await runtime.close();
      await http.shutdown();
    },
  };
}

/** GET /health: ok only while running. */
export function runtimeHealth(v: RuntimeView): HealthState {
  switch (v.state) {
    case "running":
      return "ok";
    case "starting":
      return "loading";
    case "failed":
      return { status: "failed", reason: v.reason };
    default:
      return v.state;
  }
}

interface StatusHealth {
  status: "ok" | "degraded" | "failed";
  reason: string | null;
}

/** /api/status's health: ok, degraded with what it is doing, or failed with the reason. */
function statusHealth(v: RuntimeView, role: Record<string, unknown>): StatusHealth {
  switch (v.state) {
    case "running":
      // A split stage candidate whose plan is not running yet says so (mesh/mesh.ts).
      return (role.health as StatusHealth | undefined) ?? { status: "ok", reason: null };
    case "failed":
      return { status: "failed", reason: v.reason };
    case "starting":
      return { status: "degraded", reason: `starting: ${v.progress?.phase ?? "preparing"}` };
    case "stopping":
      return { status: "degraded", reason: "stopping: letting requests in flight finish" };
    default:
      return { status: "degraded", reason: OFF_MESSAGE };
  }
}

export function runtimeStatus(runtime: NodeRuntime, identity: Identity, relayUrl: string) {
  const v = runtime.view();
  const role = runtime.role() as MeshRuntimeRole | undefined;
  // Without a role the node is in no mesh: who it is, and nothing it would learn from one.
  const base: Record<string, unknown> = role?.status() ?? {
    peerId: identity.peerId,
    npub: identity.npub,
    meshId: null,
    inMemberList: false,
    split: null,
    relay: { url: relayUrl, connected: false },
    admission: { admitted: false, denied: false, reason: null },
    peers: [],
  };
  return {
    ...base,
    state: v.state,
    mode: v.mode,
    health: statusHealth(v, base),
    modelId: v.modelId,
    modelName: v.modelName,
    progress: v.progress,
  };
}

function runtimeAvailability(runtime: NodeRuntime) {
  const role = runtime.role();
  if (role && runtime.accepting()) return role.availability();
  const v = runtime.view();
  return {
    capable: true,
    admitted: false,
    available: false,
    reason: v.state === "stopping"
      ? STOPPING_MESSAGE
      : v.state === "starting"
      ? `this node is starting (${v.mode})`
      : OFF_MESSAGE,
    models: [],
    serveTargets: [],
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
