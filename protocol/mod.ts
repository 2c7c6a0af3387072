export { KIND, MESH_STATUS_D, type NostrEvent } from "./kinds.ts";
export { toEventShape } from "./event-shape.ts";
export {
  createReplayCache,
  nip98Header,
  type ReplayCache,
  sha256Hex,
  verifyNip98,
} from "./nip98.ts";
export { makeTicket, TICKET_MAX_LIFETIME, verifyTicket } from "./ticket.ts";
export {
  libp2pKeyFromNostrSecret,
  peerIdFromNostrSecret,
  type PrivateKey,
  pubkeyFromPeerId,
} from "./nostr-libp2p-key.ts";
export {
  isEntryTarget,
  makeMeshStatusEvent,
  type MeshModel,
  type MeshStatus,
  type MeshStatusPageRef,
  parseMeshStatus,
  parseServeReport,
  type ServeReport,
  type ServeTarget,
} from "./mesh-status-event.ts";
export {
  MESH_STATUS_EVENT_MAX_BYTES,
  MESH_STATUS_MAX_PAGES,
  meshStatusPageD,
} from "./mesh-status-limits.ts";
export {
  assembleMeshStatus,
  makeMeshStatusPageEvent,
  meshStatusFilter,
  type MeshStatusPage,
  meshStatusPageOf,
  parseMeshStatusPage,
} from "./mesh-status-pages.ts";
export { targetsOfModel } from "./model-targets.ts";
export {
  type MeshInfo,
  parseRelayInformation,
  type RelayInformation,
  requireMesh,
} from "./nip11-reader.ts";
export { jsonError } from "./json-error.ts";
export { type Logger, silentLogger } from "./logger.ts";
export { encodeFrame, readFrames } from "./framing.ts";
export { ByteQueue, MAX_VARINT_BYTES, peekVarint, varint } from "./byte-queue.ts";
export { loadQuic, stubBroadcastChannel } from "./libp2p-deno.ts";
export { noiseOneWrite } from "./noise-one-write.ts";
export {
  CONNECTION_LIMITS,
  createStrangerGate,
  type StrangerGate,
  STRANGERS_PER_IP,
} from "./libp2p-limits.ts";
export { filterDialAddrs } from "./mesh-addrs.ts";
export { compose, type Composition, type Startable } from "./lifecycle.ts";
export { settleWithin } from "./settle-within.ts";
