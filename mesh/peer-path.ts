/**
 * How this node reaches a peer right now, for the node API's `peers[].path` and the dashboard's
 * mesh picture: over its own open connection ("direct"), only through the relay's circuit
 * ("relayed"), or not at all (null: a client connects to a serving node on its first request).
 */
import type { MeshNode } from "./p2p-node.ts";

export type PeerPath = "direct" | "relayed" | null;

/** What a connection shows of itself: enough to tell its path. */
export interface ConnectionView {
  status: string;
  remoteAddr: { toString(): string };
}

/** One open non-circuit connection makes it direct (libp2p prefers that one for new streams). */
export function pathOf(connections: readonly ConnectionView[]): PeerPath {
  const open = connections.filter((c) => c.status === "open");
  if (open.length === 0) return null;
  return open.some((c) => !c.remoteAddr.toString().includes("/p2p-circuit")) ? "direct" : "relayed";
}

/** The path from `node` to `peerId`; null without a running node or a connection. */
export function peerPath(node: MeshNode | undefined, peerId: string): PeerPath {
  if (!node) return null;
  return pathOf(node.libp2p.getConnections().filter((c) => c.remotePeer.toString() === peerId));
}
