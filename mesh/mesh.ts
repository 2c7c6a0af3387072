/**
 * A node's part in the mesh, composed from the relay side (NIP-11, admission, the relay
 * connection, serve reports) and the peer-to-peer side (the libp2p node, `/grove/infer/1`), in
 * docs/architecture.md's order: read NIP-11 and fail closed → get a ticket → start libp2p (a
 * serving node reserves a circuit through the rendezvous) → follow the mesh status and the member
 * list → a serving node answers requests and reports itself. What comes back is an InferenceService
 * for the HTTP layer plus the node API's status and availability.
 */
import { type Logger, silentLogger, type Startable } from "../protocol/mod.ts";
import type { Identity } from "./node-identity.ts";
import { fetchRelayInfo } from "./relay-client.ts";
import { createRemoteService, type InferCall, type RemoteService } from "./remote-service.ts";
import { type Admitted, createAdmission } from "./role-admission.ts";
import { createPeerPart, type PeerPart } from "./role-peer.ts";
import { createRelayPart, type RelayPart } from "./role-relay.ts";
import { createServingPart, type LocalModel } from "./role-serving.ts";
import { createRouter } from "./router.ts";
import { MESH_DENIED_MESSAGE, ServiceError } from "./service.ts";
import type { ServedRecord } from "./served.ts";

export type { LocalModel };

export interface MeshRoleInit {
  mode: "serve" | "client";
  relayUrl: string;
  identity: Identity;
  /** The model a serving node offers. */
  local?: LocalModel;
  /** Shown to members in serve reports; default: the npub's start. */
  name?: string;
  log?: Logger;
  quic?: boolean;
  /** Told about each request this node served for a peer (metrics). */
  onServed?: (r: ServedRecord) => void;
  /**
   * A client node the relay denied at start asks again after each of these waits (the last
   * repeats), so making it a member later works without a restart. Default 30 s, 60 s, 2 min,
   * then every 5 min.
   */
  admissionRetryMs?: number[];
}

export interface MeshRole {
  service: RemoteService;
  status(): Record<string, unknown>;
  availability(): Record<string, unknown>;
  /** Whether the relay admitted this node (false: a denied client, answering 403). */
  admitted(): boolean;
  stop(): Promise<void>;
}

export async function startMeshRole(init: MeshRoleInit): Promise<MeshRole> {
  const log = init.log ?? silentLogger;
  const { identity } = init;
  if (init.mode === "serve" && !init.local) throw new Error("a serving node needs a local model");
  const nodeName = init.name ?? identity.npub.slice(0, 16);
  const relayInfo = await fetchRelayInfo(init.relayUrl, { log });
  const { mesh, relayPubkey } = relayInfo;
  // An `--open` relay admits non-members, so its member list is no gate there.
  const membersOnly = relayInfo.info.limitation?.restricted_writes !== false;

  let peer: PeerPart | undefined;
  let relay: RelayPart | undefined;
  let serving: Startable | undefined;
  let state: "starting" | "running" | "stopping" | "off" = "starting";

  const admission = createAdmission({
    ask: { admissionUrl: mesh.admission_url, identity, relayPubkey, meshId: mesh.id },
    required: init.mode === "serve",
    retryMs: init.admissionRetryMs,
    log,
  }, { join: () => joinLater() });
  await admission.start();

  const admitted = (): Admitted => {
    const a = admission.admitted();
    if (a !== true && a.denied) return a;
    const refused = relay?.refusal();
    if (refused !== undefined) return { denied: true, reason: refused };
    if (a !== true) return a;
    if (!peer?.node()) return { denied: false, reason: "the peer-to-peer node is starting" };
    return true;
  };

  const call: InferCall = async function* (target, req, signal) {
    if (!peer) throw new ServiceError("unavailable", "the peer-to-peer node is not running");
    yield* peer.call(target, req, signal);
  };

  const router = createRouter();
  const local = init.local;
  const service = createRemoteService({
    call,
    router,
    status: () => relay?.view.status,
    admitted,
    selfPeerId: identity.peerId,
    local: local && { modelId: local.modelId, service: local.service },
  });

  async function join(): Promise<void> {
    peer = createPeerPart({
      identity,
      rendezvous: mesh.rendezvous,
      relayPubkey,
      meshId: mesh.id,
      serving: init.mode === "serve",
      quic: init.quic,
      log,
    }, { admission });
    await peer.start();
    relay = createRelayPart(
      { url: init.relayUrl, identity, relayPubkey, membersOnly, log },
      { peer },
    );
    await relay.start();
    if (local) {
      serving = createServingPart(
        { identity, local, nodeName, onServed: init.onServed, log },
        { peer, relay },
      );
      await serving.start?.();
    }
    state = "running";
    log.info(`joined mesh ${mesh.id} as ${init.mode === "serve" ? "a serving" : "a client"} node`, {
      peerId: identity.peerId,
      npub: identity.npub,
    });
  }

  /** The admission's join for a client node the relay admitted after it started. */
  async function joinLater(): Promise<void> {
    if (state !== "running") return; // stopping: the admission drops its ticket itself
    try {
      await join();
    } catch (err) {
      await stopJoined();
      [peer, relay, serving] = [undefined, undefined, undefined];
      throw err;
    }
  }

  if (admission.ticket()) {
    try {
      await join();
    } catch (err) {
      await stopJoined();
      await admission.stop();
      throw err;
    }
  } else state = "running";

  async function stopJoined(): Promise<void> {
    const steps: [string, () => Promise<void> | void][] = [
      ["serve reporter", () => serving?.stop()],
      ["relay connection", () => relay?.stop()],
      ["libp2p node", () => peer?.stop()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        log.warn(`the ${what} failed to stop cleanly: ${(err as Error).message}`);
      }
    }
  }

  function availability(): Record<string, unknown> {
    const a = admitted();
    const targets = relay?.view.status?.serveTargets ?? [];
    const models = [
      ...(local ? [{ id: local.modelId, name: local.modelName }] : []),
      ...(relay?.view.status?.models ?? []).filter((m) => m.id !== local?.modelId),
    ];
    const available = models.length > 0 && (a === true || local !== undefined);
    return {
      capable: true,
      admitted: a === true,
      available,
      reason: a !== true
        ? (a.denied ? MESH_DENIED_MESSAGE : a.reason)
        : available
        ? null
        : "no serving node offers a model right now",
      models,
      serveTargets: targets,
    };
  }

  return {
    service,
    admitted: () => admitted() === true,
    status: () => ({
      state,
      mode: init.mode,
      modelId: local?.modelId ?? null,
      modelName: local?.modelName ?? null,
      peerId: identity.peerId,
      npub: identity.npub,
      meshId: mesh.id,
      // Serving nodes admit a new member once the relay's list (polled every ~2 s) names it.
      inMemberList: relay?.view.listed ?? false,
      peers: (relay?.view.status?.serveTargets ?? [])
        .filter((t) => t.peerId !== identity.peerId)
        .map((t) => ({
          peerId: t.peerId,
          nodeName: t.nodeName,
          modelId: t.modelId,
          load: t.load,
          activeFromHere: router.activeOn(t.peerId),
        })),
    }),
    availability,
    async stop() {
      if (state === "off") return;
      state = "stopping";
      await stopJoined();
      await admission.stop();
      state = "off";
    },
  };
}
