/**
 * A mesh status of one model ("m", "Model M") served by the targets a test names, for tests of
 * how a client node routes a request to serving nodes (mesh/remote-embed.test.ts,
 * mesh/remote-tokenizer.test.ts).
 */
import type { MeshStatus, ServeTarget } from "../../protocol/mod.ts";
import { type InferenceService, ServiceError } from "../../mesh/mod.ts";

/** A node serving model "m" with `features`, whole (no stages) unless `stages` says otherwise. */
export function target(
  peerId: string,
  features?: string[],
  stages: [number, number][] | null = null,
): ServeTarget {
  const t: ServeTarget = {
    modelId: "m",
    modelName: "Model M",
    peerId,
    pubkey: "0".repeat(64),
    nodeName: `node-${peerId}`,
    addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerId}`],
    stages,
    capacity: { memoryBytes: 1 },
    load: { active: 0, queued: 0 },
  };
  if (features) t.features = features;
  return t;
}

export const status = (targets: ServeTarget[]): MeshStatus => ({
  v: 1,
  type: "mesh-status",
  updatedAt: 1,
  meshId: "x",
  serveTargets: targets,
  models: [{ id: "m", name: "Model M" }],
  peerCount: targets.length,
});

/** A signal that never aborts. */
export const never = () => new AbortController().signal;

/** A predicate for assert.rejects: a ServiceError of `code` whose message matches `re`. */
export const isCode = (code: string, re = /./) => (e: unknown) =>
  e instanceof ServiceError && e.code === code && re.test(e.message);

/**
 * What a remote service needs but the router and the call under test: no generation, every
 * peer admitted, and `local` (if any) serving the model "own" in process.
 */
export function remoteInit(targets: ServeTarget[], local?: InferenceService) {
  return {
    call: () => {
      throw new Error("no generation here");
    },
    status: () => status(targets),
    admitted: () => true as const,
    local: local && { modelId: "own", service: local },
  };
}
