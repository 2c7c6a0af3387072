/**
 * The relay-facing side of a node (docs/protocol.md#the-relay): the NIP-11 document, read
 * fail-closed, and one NIP-42-authenticated connection that follows the relay-signed mesh status
 * (30621) and membership list (13534), publishes the node's events, and reconnects with bounded
 * backoff.
 */
import {
  type Logger,
  type MeshInfo,
  type NostrEvent,
  parseRelayInformation,
  pubkeyFromPeerId,
  type RelayInformation,
  requireMesh,
} from "../protocol/mod.ts";
import { createRelayConnection, type RelayConnectionInit } from "./relay-connection.ts";
import { createRelayState, type RelayState } from "./relay-state.ts";

/** The node must not start: the relay offers no usable mesh, or cannot be read. */
export class MeshStartError extends Error {
  override name = "MeshStartError";
}

export interface RelayInfoResult {
  info: RelayInformation;
  /** Rendezvous addresses kept: only those whose /p2p/ peer id is the relay's own key. */
  mesh: MeshInfo;
  relayPubkey: string;
}

/** ws(s)://host/path → http(s)://host/path, where NIP-11 is served. */
export function relayHttpUrl(relayUrl: string): string {
  let u: URL;
  try {
    u = new URL(relayUrl);
  } catch {
    throw new MeshStartError(`relay URL ${JSON.stringify(relayUrl)} is not a URL`);
  }
  const scheme = { "ws:": "http:", "wss:": "https:", "http:": "http:", "https:": "https:" }[
    u.protocol
  ];
  if (scheme === undefined) {
    throw new MeshStartError(`relay URL ${relayUrl} must start with ws://, wss://, http(s)://`);
  }
  return `${scheme}//${u.host}${u.pathname}`;
}

export async function fetchRelayInfo(
  relayUrl: string,
  opts: { fetch?: typeof fetch; timeoutMs?: number; log?: Logger } = {},
): Promise<RelayInfoResult> {
  const url = relayHttpUrl(relayUrl);
  const refuse = (why: string) =>
    new MeshStartError(`relay ${relayUrl}: ${why}; this node refuses to start`);
  let json: unknown;
  try {
    const res = await (opts.fetch ?? fetch)(url, {
      headers: { accept: "application/nostr+json" },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw refuse(`its NIP-11 document answered HTTP ${res.status}`);
    }
    json = await res.json().catch(() => {
      throw refuse("its NIP-11 document is not JSON");
    });
  } catch (err) {
    if (err instanceof MeshStartError) throw err;
    throw refuse(`cannot fetch its NIP-11 document from ${url} (${(err as Error).message})`);
  }
  let info: RelayInformation, mesh: MeshInfo;
  try {
    info = parseRelayInformation(json);
    mesh = requireMesh(info);
  } catch (err) {
    throw refuse((err as Error).message.replace(/; refusing to start$/, ""));
  }
  // A rendezvous of another key would be a peer the relay does not vouch for.
  const rendezvous = mesh.rendezvous.filter((addr) => {
    const peer = /\/p2p\/([^/]+)$/.exec(addr)?.[1];
    const ok = peer !== undefined && pubkeyFromPeerId(peer) === info.pubkey;
    if (!ok) opts.log?.warn(`ignoring rendezvous address ${addr}: not the relay's own peer id`);
    return ok;
  });
  if (rendezvous.length === 0) {
    throw refuse("none of the mesh's rendezvous addresses names the relay's own peer id");
  }
  return { info, mesh: { ...mesh, rendezvous }, relayPubkey: info.pubkey };
}

/** The relay as a node sees it: what the relay state keeps (relay-state.ts), plus publishing. */
export interface RelayClient extends
  Pick<
    RelayState,
    | "onMeshStatus"
    | "onMembers"
    | "onDenied"
    | "meshStatus"
    | "members"
    | "membersListedAt"
    | "denied"
  > {
  /** Resolves on the relay's OK true; throws an Error whose message is the relay's on OK false. */
  publish(ev: NostrEvent): Promise<void>;
  connected(): boolean;
  close(): Promise<void>;
}

export type ConnectRelayOptions = RelayConnectionInit;

/**
 * Connects and authenticates; throws when the first connection fails, reconnects after that. The
 * client is the connection loop (relay-connection.ts) feeding the state it keeps between
 * connections (relay-state.ts).
 */
export async function connectRelay(opts: ConnectRelayOptions): Promise<RelayClient> {
  const state = createRelayState({ relayPubkey: opts.relayPubkey, log: opts.log });
  const connection = createRelayConnection(opts, { state });
  await connection.start();
  return {
    publish: connection.publish,
    onMeshStatus: state.onMeshStatus,
    onMembers: state.onMembers,
    onDenied: state.onDenied,
    meshStatus: state.meshStatus,
    members: state.members,
    membersListedAt: state.membersListedAt,
    denied: state.denied,
    connected: connection.connected,
    close: connection.stop,
  };
}
