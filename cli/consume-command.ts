/**
 * `grove consume`: a client node (docs/http-api.md). A local OpenAI-compatible endpoint whose
 * requests run on the mesh's serving nodes. It binds 127.0.0.1; another `--host` demands
 * `--api-key`, since an open endpoint on the LAN would hand the mesh to non-members. A node the
 * relay denied still starts and answers 403 mesh_denied, so the user's tools say why.
 */
import { loadIdentity, startMeshRole } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { installedModelHooks } from "../models/mod.ts";
import type { RunningNode } from "./serve-command.ts";
import { parseFlags } from "./flags.ts";
import {
  exitNow,
  NODE_FLAGS,
  type NodeOptions,
  nodeOptions,
  requireApiKeyBeyondLoopback,
  serveHttp,
  untilSignal,
} from "./node-flags.ts";
import { browserAccess } from "./node-access.ts";

export function consumeOptionsFromArgs(args: string[]): NodeOptions {
  const opts = nodeOptions(parseFlags(args, NODE_FLAGS));
  requireApiKeyBeyondLoopback(opts);
  return opts;
}

/** Joins the mesh as a client and listens on HTTP, until stop(). */
export async function startClientNode(opts: NodeOptions, label = "node"): Promise<RunningNode> {
  const { log } = opts;
  const identity = await loadIdentity({ nsec: opts.nsec, dataDir: opts.dataDir, log });
  const role = await startMeshRole({
    mode: "client",
    relayUrl: opts.relayUrl,
    identity,
    name: opts.name,
    log,
    quic: opts.quic,
  });
  const app = createNodeApp({
    service: role.service,
    apiKey: opts.apiKey,
    browser: browserAccess(opts),
    maxBody: opts.maxBody,
    mode: "client",
    node: { status: role.status, availability: role.availability, ...installedModelHooks() },
  });
  const http = serveHttp({ ...opts, label }, app.fetch);
  console.log(`client node ${identity.npub} (peer ${identity.peerId})`);
  if (!role.admitted()) console.log("mesh admission denied: requests answer 403 mesh_denied");
  return {
    url: http.url,
    role,
    async stop() {
      await role.stop();
      await http.shutdown();
    },
  };
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
