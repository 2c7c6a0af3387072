/** The mesh: how a request reaches a model, locally now and over libp2p later. */
export {
  errorEvent,
  MESH_DENIED_MESSAGE,
  SERVICE_ERROR_CODES,
  ServiceError,
  serviceErrorOf,
} from "./service.ts";
export type {
  ChatMessage,
  DoneEvent,
  ErrorEvent,
  InferenceService,
  InferEvent,
  InferParams,
  InferRequest,
  InferTimings,
  ModelInfo,
  ServiceErrorCode,
  ServiceLoad,
  TokenEvent,
  TopLogprob,
} from "./service.ts";
export { createLocalService, promptTokens, samplerOptions } from "./local-service.ts";
export type {
  GenerationEnd,
  LocalService,
  LocalServiceComponents,
  LocalServiceInit,
} from "./local-service.ts";
export { checkPromptLength, encodePrompt, promptText, promptWeight } from "./prompt.ts";
export type { PromptModel } from "./prompt.ts";
export {
  createPromptEncoder,
  INLINE_PROMPT_WEIGHT,
  PROMPT_WORKER_IDLE_MS,
} from "./prompt-encoder.ts";
export type { PromptEncoder, PromptEncoderInit } from "./prompt-encoder.ts";

// The mesh proper: identity, the relay side, the peer-to-peer side, routing and composition.
export { IDENTITY_FILE, identityOf, loadIdentity, parseSecret } from "./identity.ts";
export type { Identity, LoadIdentityOptions } from "./identity.ts";
export { silentLogger } from "./log.ts";
export type { Logger } from "./log.ts";
export { connectRelay, fetchRelayInfo, MeshStartError, relayHttpUrl } from "./relay-client.ts";
export type { ConnectRelayOptions, RelayClient, RelayInfoResult } from "./relay-client.ts";
export { keepTicket, requestTicket } from "./admission.ts";
export type { DenialCause, KeepTicketOptions, TicketKeeper, TicketRequest } from "./admission.ts";
export { serveReportEvent, startServeReporter } from "./serve-reporter.ts";
export type { ServeReporter, ServeReporterOptions } from "./serve-reporter.ts";
export { dialOrder, meshNodeOptions, startMeshNode } from "./p2p-node.ts";
export type { MeshIdentity, MeshNode, MeshNodeInit, Stream, StreamHandler } from "./p2p-node.ts";
export { createTicketGate, TICKET_PROTOCOL } from "./ticket-exchange.ts";
export type { AdmittedPeer, TicketGate, TicketGateInit } from "./ticket-exchange.ts";
export {
  callInfer,
  encodeInferRequest,
  INFER_PROTOCOL,
  serveInfer,
  WENT_AWAY,
} from "./infer-protocol.ts";
export { parseInferRequest, REQUEST_LIMITS } from "./request-limits.ts";
export type { InferTimeouts } from "./infer-protocol.ts";
export {
  FrameBudgetError,
  FrameTimeoutError,
  MAX_ANSWER_BYTES,
  MAX_EVENT_FRAME_BYTES,
  MAX_FRAME_BYTES,
  MAX_REQUEST_FRAME_BYTES,
  readOneFrame,
  readStreamFrames,
  StreamEndedError,
  writeFrame,
} from "./stream-frames.ts";
export { createRouter, FAIL_MS, LATENCY_SLACK_MS, loadOf, pickTarget } from "./router.ts";
export type { Router, RouterInit, RouteView } from "./router.ts";
export { createRemoteService } from "./remote-service.ts";
export type { InferCall, RemoteService, RemoteServiceInit } from "./remote-service.ts";
export { countServed } from "./served.ts";
export type { ServedHooks, ServedRecord } from "./served.ts";
export { startMeshRole } from "./mesh.ts";
export type { LocalModel, MeshRole, MeshRoleInit } from "./mesh.ts";
