/**
 * The peer-to-peer part of a mesh role: the libp2p node (p2p-node.ts), which shows the
 * admission's ticket to every peer it connects to, and its spare `/grove/infer/1` streams
 * (infer-protocol.ts). `call` runs one request on one peer. A removed member hears nothing from
 * the relay, but its peers hang up on it: so a call that fails, or that a peer answers
 * `unavailable`, asks the admission to check with the relay.
 */
import type { Logger, Startable } from "../protocol/mod.ts";
import type { Stream } from "@libp2p/interface";
import {
  callInfer,
  createInferStreams,
  INFER_PROTOCOL,
  type InferStreams,
} from "./infer-protocol.ts";
import { callEmbed } from "./embed-protocol.ts";
import type { EmbedCall } from "./remote-embed.ts";
import { callTokenizer } from "./tokenizer-protocol.ts";
import type { TokenizerCall } from "./remote-tokenizer.ts";
import { type MeshIdentity, type MeshNode, startMeshNode } from "./p2p-node.ts";
import type { InferCall } from "./remote-service.ts";
import type { Admission } from "./role-admission.ts";
import { type InferEvent, ServiceError } from "./service.ts";

export interface PeerPartInit {
  identity: MeshIdentity;
  /** The relay's libp2p addresses (NIP-11's `mesh.rendezvous`). */
  rendezvous: string[];
  relayPubkey: string;
  meshId: string;
  /** A serving node holds a circuit reservation on the relay so peers can reach it. */
  serving: boolean;
  quic?: boolean;
  /** The IPv4 address libp2p listens on; default loopback (p2p-node.ts). */
  listenHost?: string;
  log?: Logger;
}

export interface PeerPartComponents {
  admission: Pick<Admission, "ticket" | "recheck">;
  startMeshNode?: typeof startMeshNode;
}

export interface PeerPart extends Startable {
  start(): Promise<void>;
  /** The running node; undefined before start and after stop. */
  node(): MeshNode | undefined;
  call: InferCall;
  embed: EmbedCall;
  tokenizer: TokenizerCall;
}

export function createPeerPart(init: PeerPartInit, components: PeerPartComponents): PeerPart {
  const { admission } = components;
  const startNode = components.startMeshNode ?? startMeshNode;
  let node: MeshNode | undefined;
  let streams: InferStreams | undefined;

  async function* call(
    target: { peerId: string; addrs: string[] },
    req: Parameters<InferCall>[1],
    signal: AbortSignal,
  ): AsyncGenerator<InferEvent> {
    if (!node) throw new ServiceError("unavailable", "the peer-to-peer node is not running");
    try {
      for await (const event of callInfer(node, target, req, signal, { streams })) {
        if (event.type === "error" && event.code === "unavailable") admission.recheck();
        yield event;
      }
    } catch (err) {
      if (!signal.aborted) admission.recheck();
      throw err;
    }
  }

  /** A request answered in one piece (embeddings, tokenizer) on a fresh stream to `target`. */
  async function once<T>(
    target: { peerId: string; addrs: string[] },
    signal: AbortSignal,
    run: (open: (limit: AbortSignal) => Promise<Stream>) => Promise<T>,
  ): Promise<T> {
    const running = node;
    if (!running) throw new ServiceError("unavailable", "the peer-to-peer node is not running");
    const open = (limit: AbortSignal) =>
      running.dialProtocol(target.peerId, target.addrs, INFER_PROTOCOL, limit);
    try {
      return await run(open);
    } catch (err) {
      if (!signal.aborted && err instanceof ServiceError && err.code === "unavailable") {
        admission.recheck();
      }
      throw err;
    }
  }

  const embed: EmbedCall = (target, req, signal) =>
    once(target, signal, (open) => callEmbed(open, req, signal));
  const tokenizer: TokenizerCall = (target, req, signal) =>
    once(target, signal, (open) => callTokenizer(open, req, signal));

  return {
    name: "libp2p node",
    async start() {
      node = await startNode({
        identity: init.identity,
        rendezvous: init.rendezvous,
        relayPubkey: init.relayPubkey,
        meshId: init.meshId,
        ticket: () => admission.ticket(),
        serving: init.serving,
        quic: init.quic,
        listenHost: init.listenHost,
        log: init.log,
      });
      streams = createInferStreams(node);
    },
    node: () => node,
    call,
    embed,
    tokenizer,
    async stop() {
      const [stopping, spares] = [node, streams];
      [node, streams] = [undefined, undefined];
      try {
        spares?.close();
      } finally {
        await stopping?.stop();
      }
    },
  };
}
