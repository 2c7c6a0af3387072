/**
 * The serving part of a mesh role: the node's own model answers `/grove/infer/1` for its peers
 * (infer-protocol.ts), each request counted (served.ts: the node's metrics, and a load change),
 * and serve reports tell the relay what the node offers and how busy it is (serve-reporter.ts),
 * the last one, at stop, saying "stopping" so the relay withdraws it at once.
 */
import type { Logger, ServeReport, Startable } from "../protocol/mod.ts";
import type { Clock } from "./clock.ts";
import { serveInfer } from "./infer-protocol.ts";
import type { Identity } from "./node-identity.ts";
import type { PeerPart } from "./role-peer.ts";
import type { RelayPart } from "./role-relay.ts";
import type { SplitNode } from "./split-node.ts";
import { stageDeadline } from "./stage-deadline.ts";
import { openStageLink, serveStage } from "./stage-protocol.ts";
import { type ServeReporter, startServeReporter } from "./serve-reporter.ts";
import { countServed, type ServedRecord } from "./served.ts";
import type { InferenceService } from "./service.ts";

/** How long a coordinator waits for a stage to open (dial, plan check, loading its layers). */
const OPEN_MS = 10_000;

export interface LocalModel {
  service: InferenceService & {
    load(): { active: number; queued: number };
    /** The request features it honours beyond the base (local-service.ts); none when absent. */
    features?(): readonly string[];
  };
  /** Catalog id or hf:// ref: what members ask for. Never a local path. */
  modelId: string;
  modelName: string;
  capacity: { memoryBytes: number };
  /** The GGUF's SHA-256: how split candidates recognise the same model. */
  sha256?: string;
  /** Set when the model does not fit this node: it serves as a split stage candidate. */
  split?: SplitNode;
}

export interface ServingPartInit {
  identity: Identity;
  local: LocalModel;
  /** Shown to members in serve reports. */
  nodeName: string;
  /** Told about each request this node served for a peer (metrics). */
  onServed?: (r: ServedRecord) => void;
  log?: Logger;
}

export interface ServingPartComponents {
  /** Its node answers the peers' streams; its addresses go in the reports. */
  peer: Pick<PeerPart, "node">;
  /** Where the reports go; a split candidate re-plans on each mesh status. */
  relay: Pick<RelayPart, "publish" | "onStatus" | "view">;
  clock?: Clock;
}

export function createServingPart(
  init: ServingPartInit,
  components: ServingPartComponents,
): Startable {
  const { identity, local } = init;
  const { split } = local;
  let reporter: ServeReporter | undefined;
  let stopping = false;
  let unsubscribe: (() => void) | undefined;

  const report = (): ServeReport => {
    const r: ServeReport = {
      modelId: local.modelId,
      modelName: local.modelName,
      peerId: identity.peerId,
      nodeName: init.nodeName,
      addrs: components.peer.node()?.directAddrs() ?? [],
      stages: null,
      capacity: local.capacity,
      load: local.service.load(),
      state: stopping ? "stopping" : "ready",
    };
    if (local.sha256) r.sha256 = local.sha256;
    // A client sends a request needing a feature only to a node that lists it.
    const features = local.service.features?.() ?? [];
    if (features.length > 0) r.features = [...features];
    if (split) {
      const s = split.report();
      r.stages = s.stages;
      r.planId = s.planId;
      if (!stopping) r.state = s.state;
    }
    return r;
  };

  return {
    name: "serving side",
    async start() {
      const node = components.peer.node();
      if (!node) throw new Error("the serving side needs the libp2p node started first");
      const served = countServed(local.service, {
        onChange: () => reporter?.changed(),
        onServed: init.onServed,
      });
      await serveInfer(node, served, init.log);
      if (split) {
        await serveStage(
          node,
          { open: (req, from) => split.openStage(req, from.peerId) },
          init.log,
        );
        split.attach({
          status: () => components.relay.view.status,
          connect: async (target, open) => {
            const deadline = stageDeadline();
            // Within the coordinator's time to assemble a plan: a frozen peer is skipped, not
            // waited for. Loading a stage's layers counts here too.
            const link = await openStageLink(node, target, open, {
              openTimeoutMs: OPEN_MS,
              stepTimeoutMs: deadline.stepTimeoutMs,
            });
            return deadline.measure(link);
          },
          changed: () => reporter?.changed(),
        });
        unsubscribe = components.relay.onStatus(() => split.refresh());
      }
      reporter = startServeReporter({
        relay: components.relay,
        identity,
        report,
        log: init.log,
        clock: components.clock,
      });
    },
    async stop() {
      stopping = true;
      unsubscribe?.();
      split?.detach();
      await reporter?.stop();
    },
  };
}
