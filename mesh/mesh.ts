/**
 * A node's part in the mesh: the role, composed of parts with one lifecycle
 * (protocol/lifecycle.ts), in docs/architecture.md's order. NIP-11 is read first and fails
 * closed; then, each part in its own file:
 *
 *   admission  role-admission.ts  get a ticket and keep it; a denied client asks again later
 *   peer       role-peer.ts       the libp2p node (a serving node reserves a circuit through the
 *                                 rendezvous) and its spare streams
 *   relay      role-relay.ts      the relay connection: the mesh status and the member list
 *   serving    role-serving.ts    a serving node answers requests and reports itself
 *
 * The last three are this node's link to the mesh: they start together once the relay admitted
 * it (at start, or later for a client denied at start), a new set for each join, and stop in
 * reverse. What comes back is an InferenceService for the HTTP layer plus the node API's status
 * and availability.
 */
import {
  compose,
  type Composition,
  type Logger,
  silentLogger,
  type Startable,
} from "../protocol/mod.ts";
import type { Identity } from "./node-identity.ts";
import { fetchRelayInfo } from "./relay-client.ts";
import { createRemoteService, type InferCall, type RemoteService } from "./remote-service.ts";
import type { EmbedCall } from "./remote-embed.ts";
import type { TokenizerCall } from "./remote-tokenizer.ts";
import { type Admitted, createAdmission } from "./role-admission.ts";
import { createPeerPart, type PeerPart } from "./role-peer.ts";
import { createRelayPart, type RelayPart } from "./role-relay.ts";
import { createServingPart, type LocalModel } from "./role-serving.ts";
import { peerPath } from "./peer-path.ts";
import { createRouter } from "./router.ts";
import { watchPeers } from "./peer-watch.ts";
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
  /** The IPv4 address libp2p listens on (`--mesh-host`); default loopback. */
  listenHost?: string;
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
  const { identity, local } = init;
  if (init.mode === "serve" && !local) throw new Error("a serving node needs a local model");
  const nodeName = init.name ?? identity.npub.slice(0, 16);
  const relayInfo = await fetchRelayInfo(init.relayUrl, { log });
  const { mesh, relayPubkey } = relayInfo;
  // An `--open` relay admits non-members, so its member list is no gate there.
  const membersOnly = relayInfo.info.limitation?.restricted_writes !== false;

  let phase: "starting" | "running" | "stopping" | "off" = "starting";
  /** The link's parts while this node is in the mesh; none while a denied client waits. */
  let joined: { peer: PeerPart; relay: RelayPart; parts: Composition } | undefined;

  const admission = createAdmission({
    ask: { admissionUrl: mesh.admission_url, identity, relayPubkey, meshId: mesh.id },
    required: init.mode === "serve",
    retryMs: init.admissionRetryMs,
    log,
  }, { join: () => joinAdmitted() });

  /** Starts the link's parts; when one fails, those started are stopped and it rethrows. */
  async function join(): Promise<void> {
    const peer = createPeerPart({
      identity,
      rendezvous: mesh.rendezvous,
      relayPubkey,
      meshId: mesh.id,
      serving: init.mode === "serve",
      quic: init.quic,
      listenHost: init.listenHost,
      log,
    }, { admission });
    const relay = createRelayPart(
      { url: init.relayUrl, identity, relayPubkey, membersOnly, log },
      { peer },
    );
    const parts: Startable[] = [peer, relay];
    if (local) {
      parts.push(createServingPart(
        { identity, local, nodeName, onServed: init.onServed, log },
        { peer, relay },
      ));
    }
    const composition = compose(parts, log);
    await composition.startAll();
    joined = { peer, relay, parts: composition };
    log.info(`joined mesh ${mesh.id} as ${init.mode === "serve" ? "a serving" : "a client"} node`, {
      peerId: identity.peerId,
      npub: identity.npub,
    });
  }

  /** The admission's join, for a client node the relay admitted after it started. */
  async function joinAdmitted(): Promise<void> {
    if (phase !== "running") return; // stopping: the admission drops its ticket itself
    await join();
    // Asked to stop while it joined: the link had nothing to stop then.
    if (phase !== "running") await joined?.parts.stop();
  }

  const link: Startable = {
    name: "mesh link",
    // A client denied at start holds no ticket: it joins once the admission's retry admits it.
    start: () => admission.ticket() ? join() : undefined,
    stop: () => joined?.parts.stop(),
  };
  const role = compose([admission, link], log);

  const admitted = (): Admitted => {
    const a = admission.admitted();
    if (a !== true && a.denied) return a;
    const refused = joined?.relay.refusal();
    if (refused !== undefined) return { denied: true, reason: refused };
    if (a !== true) return a;
    if (!joined) return { denied: false, reason: "the peer-to-peer node is starting" };
    return true;
  };

  const call: InferCall = async function* (target, req, signal) {
    if (!joined) throw new ServiceError("unavailable", "the peer-to-peer node is not running");
    yield* joined.peer.call(target, req, signal);
  };
  const embed: EmbedCall = async (target, req, signal) => {
    if (!joined) throw new ServiceError("unavailable", "the peer-to-peer node is not running");
    return await joined.peer.embed(target, req, signal);
  };
  const tokenizer: TokenizerCall = async (target, req, signal) => {
    if (!joined) throw new ServiceError("unavailable", "the peer-to-peer node is not running");
    return await joined.peer.tokenizer(target, req, signal);
  };
  const meshStatus = () => joined?.relay.view.status;

  const router = createRouter();
  const service = createRemoteService({
    call,
    embed,
    tokenizer,
    router,
    status: meshStatus,
    admitted,
    selfPeerId: identity.peerId,
    local: local && { modelId: local.modelId, service: local.service },
    log,
  });

  await role.startAll();
  phase = "running";
  // A frozen serving peer leaves routing before a request picks it (peer-watch.ts).
  const watch = watchPeers({
    node: () => joined?.peer.node(),
    peers: () => (meshStatus()?.serveTargets ?? []).map((t) => t.peerId),
    router,
    log,
  });

  function availability(): Record<string, unknown> {
    const a = admitted();
    const targets = meshStatus()?.serveTargets ?? [];
    const models = [
      ...(local ? [{ id: local.modelId, name: local.modelName }] : []),
      ...(meshStatus()?.models ?? []).filter((m) => m.id !== local?.modelId),
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

  /** A split candidate whose plan is not running yet is up, but cannot answer: degraded. */
  function splitHealth(): { health?: { status: "degraded"; reason: string } } {
    const split = local?.split?.report();
    if (!split || split.state === "ready") return {};
    const reason = split.state === "loading"
      ? "loading this node's layers of the split model, or waiting for the other stages"
      : String(local!.split!.describe().reason);
    return { health: { status: "degraded", reason } };
  }

  /** The relay's own words when it refused this node; a reason while it is still joining. */
  function admissionView() {
    const a = admitted();
    if (a === true) return { admitted: true, denied: false, reason: null };
    return { admitted: false, denied: a.denied, reason: a.reason };
  }

  return {
    service,
    admitted: () => admitted() === true,
    status: () => ({
      ...splitHealth(),
      state: phase,
      mode: init.mode,
      modelId: local?.modelId ?? null,
      modelName: local?.modelName ?? null,
      // A split candidate: its plan, its layers, or what it waits for ("waiting: 300 MiB more needed").
      split: local?.split?.describe() ?? null,
      peerId: identity.peerId,
      npub: identity.npub,
      meshId: mesh.id,
      // Serving nodes admit a new member once the relay's list (polled every ~2 s) names it.
      inMemberList: joined?.relay.view.listed ?? false,
      relay: { url: init.relayUrl, connected: joined?.relay.connected() ?? false },
      admission: admissionView(),
      peers: (meshStatus()?.serveTargets ?? [])
        .filter((t) => t.peerId !== identity.peerId)
        .map((t) => ({
          peerId: t.peerId,
          nodeName: t.nodeName,
          modelId: t.modelId,
          load: t.load,
          activeFromHere: router.activeOn(t.peerId),
          path: peerPath(joined?.peer.node(), t.peerId),
          // Its connection looks open but leaves pings unanswered (frozen, cut off): a cut answer
          // is not continued there.
          silent: router.silent(t.peerId),
        })),
    }),
    availability,
    async stop() {
      if (phase === "off") return;
      phase = "stopping";
      watch.stop();
      await role.stop();
      phase = "off";
    },
  };
}
