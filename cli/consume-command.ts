/**
 * `grove consume`: a client node (docs/http-api.md). A local OpenAI-compatible endpoint whose
 * requests run on the mesh's serving nodes. It binds 127.0.0.1; another `--host` demands
 * `--api-key`, since an open endpoint on the LAN would hand the mesh to non-members. A node the
 * relay denied still starts and answers 403 mesh_denied, so the user's tools say why. The node API
 * may make it serve a model, and stop it, without a restart (node-host.ts).
 */
import { parseFlags } from "./flags.ts";
import {
  exitNow,
  NODE_FLAGS,
  type NodeOptions,
  nodeOptions,
  requireApiKeyBeyondLoopback,
  untilSignal,
} from "./node-flags.ts";
import { type RunningNode, startNodeHost } from "./node-host.ts";
import type { MeshRuntimeRole } from "./runtime-roles.ts";

export function consumeOptionsFromArgs(args: string[]): NodeOptions {
  const opts = nodeOptions(parseFlags(args, NODE_FLAGS));
  requireApiKeyBeyondLoopback(opts);
  return opts;
}

/** Joins the mesh as a client and listens on HTTP, until stop(). */
export async function startClientNode(opts: NodeOptions, label = "node"): Promise<RunningNode> {
  const node = await startNodeHost(opts, { mode: "client" }, label);
  const { identity } = node;
  console.log(`client node ${identity.npub} (peer ${identity.peerId})`);
  const role = node.runtime.role() as MeshRuntimeRole | undefined;
  if (role && !role.mesh.admitted()) {
    console.log("mesh admission denied: requests answer 403 mesh_denied");
  }
  return node;
}

export async function consumeCommand(args: string[]): Promise<number> {
  const opts = consumeOptionsFromArgs(args);
  const node = await startClientNode(opts);
  const signal = await untilSignal();
  opts.log.info(`got ${signal}, stopping`);
  await node.stop();
  opts.log.info("client node stopped");
  return await exitNow(0);
}
