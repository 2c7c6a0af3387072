// Test helper: a rendezvous on loopback, members with tickets from a test relay key, and cleanup.
import { generateSecretKey, getPublicKey } from "nostr-tools/pure";
import {
  libp2pKeyFromNostrSecret,
  type Logger,
  makeTicket,
  type NostrEvent,
  peerIdFromNostrSecret,
} from "../../protocol/mod.ts";
import { startRendezvous } from "../../relay/rendezvous.ts";
import {
  type MeshIdentity,
  type MeshNode,
  type MeshNodeInit,
  startMeshNode,
} from "../../mesh/mod.ts";

export const MESH_ID = "test-mesh";

/** Collects warnings so a test can assert why a connection was closed. */
export function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (msg: string) => void lines.push(msg);
  return { lines, info() {}, warn: put, error: put };
}

export function newIdentity(): MeshIdentity {
  const secret = generateSecretKey();
  return {
    peerId: peerIdFromNostrSecret(secret),
    pubkey: getPublicKey(secret),
    libp2pKey: libp2pKeyFromNostrSecret(secret),
  };
}

export interface TestMesh {
  relaySecret: Uint8Array;
  relayPubkey: string;
  rendezvous: string[];
  /** Peer ids the rendezvous lets in. */
  allowed: Set<string>;
  ticketFor(id: MeshIdentity, opts?: { meshId?: string; expiresIn?: number }): NostrEvent;
  /** A member node with a valid ticket (unless `ticket` overrides it), stopped after the test. */
  node(opts?: Partial<MeshNodeInit> & { id?: MeshIdentity }): Promise<MeshNode>;
}

/** Runs `fn` against a fresh rendezvous; stops every node it started, then the rendezvous. */
export async function withMesh(fn: (mesh: TestMesh) => Promise<void>): Promise<void> {
  const relaySecret = generateSecretKey();
  const allowed = new Set<string>();
  const rv = await startRendezvous({
    host: "127.0.0.1",
    port: 0,
    privateKey: libp2pKeyFromNostrSecret(relaySecret),
    allowPeer: (p) => allowed.has(p),
  });
  const nodes: MeshNode[] = [];
  const mesh: TestMesh = {
    relaySecret,
    relayPubkey: getPublicKey(relaySecret),
    rendezvous: rv.addrs,
    allowed,
    ticketFor(id, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const expiresIn = opts.expiresIn ?? 300;
      return makeTicket(relaySecret, {
        member: id.pubkey,
        peerId: id.peerId,
        meshId: opts.meshId ?? MESH_ID,
        // An expired ticket is one signed long enough ago.
        now: expiresIn > 0 ? now : now + expiresIn - 60,
        expiresAt: now + expiresIn,
      });
    },
    async node(opts = {}) {
      const id = opts.id ?? newIdentity();
      allowed.add(id.peerId);
      const ticket = opts.ticket ? opts.ticket() : mesh.ticketFor(id);
      const node = await startMeshNode({
        identity: id,
        rendezvous: rv.addrs,
        relayPubkey: mesh.relayPubkey,
        meshId: MESH_ID,
        ticket: () => ticket,
        serving: false,
        ...opts,
      });
      nodes.push(node);
      return node;
    },
  };
  try {
    await fn(mesh);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await rv.stop();
  }
}

export function connected(a: MeshNode, b: MeshNode): boolean {
  return a.libp2p.getConnections().some((c) =>
    c.remotePeer.toString() === b.peerId && c.status === "open"
  );
}
