/**
 * `grove serve`: a serving node (docs/http-api.md#flags). It loads a model, offers it to the mesh's
 * members and serves it on its own local /v1 too (a serving node is its own client; other models of
 * the mesh go through the mesh). Runs until SIGINT or SIGTERM; in between, the node API may stop
 * it, turn it into a client or serve another model (node-host.ts).
 */
import { numberFlag, parseFlags } from "./flags.ts";
import {
  exitNow,
  NODE_FLAGS,
  type NodeOptions,
  nodeOptions,
  parseSize,
  requireApiKeyBeyondLoopback,
  untilSignal,
} from "./node-flags.ts";
import { type RunningNode, startNodeHost } from "./node-host.ts";
import { publicModelId } from "./runtime-roles.ts";

export { publicModelId };
export type { RunningNode };

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

/** Loads the model, joins the mesh, listens on HTTP: a serving node, until stop(). */
export async function startServeNode(opts: ServeOptions, label = "node"): Promise<RunningNode> {
  const node = await startNodeHost(opts, {
    mode: "serve",
    modelId: opts.model,
    maxMemory: opts.maxMemory,
    gpu: opts.gpu,
  }, label);
  console.log(`serving ${node.modelId} as ${node.identity.npub} (peer ${node.identity.peerId})`);
  return node;
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
