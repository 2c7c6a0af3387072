/** The mesh: how a request reaches a model, on this node's engine or on a peer's over libp2p. */
export { MESH_DENIED_MESSAGE, REQUEST_FEATURES, ServiceError, serviceErrorOf } from "./service.ts";
export type {
  ChatMessage,
  Constraint,
  DoneEvent,
  EmbedPooling,
  EmbedRequest,
  EmbedResult,
  InferenceService,
  InferEvent,
  InferParams,
  InferRequest,
  ModelInfo,
  ModelProps,
  RequestFeature,
  ServiceErrorCode,
  ServiceLoad,
  TokenEvent,
  TokenizerAnswer,
  TokenizerRequest,
  TokenPiece,
  ToolCallEvent,
  ToolChoice,
  ToolSpec,
} from "./service.ts";
export { createLocalService, promptTokens, samplerOptions } from "./local-service.ts";
export type { GenerationEnd, LocalModelView, LocalService, ServedModel } from "./local-service.ts";
export { encodePrompt, promptText } from "./prompt.ts";
export { localTokenizerAnswer } from "./local-tokenizer.ts";
export { decodeVector, EMBED_LIMITS, encodeVector } from "./embed-request.ts";
export { AUTO_MODEL, embedNeeds, inferNeeds, pickAutoModel } from "./auto-model.ts";
export type { AutoCandidate, AutoNeeds } from "./auto-model.ts";
export { createPromptEncoder } from "./prompt-encoder.ts";

// The mesh proper: identity, the relay side, the peer-to-peer side, routing and composition.
export { identityOf, loadIdentity, parseSecret } from "./node-identity.ts";
export type { Identity } from "./node-identity.ts";
export { connectRelay, fetchRelayInfo, MeshStartError, relayHttpUrl } from "./relay-client.ts";
export type { RelayClient } from "./relay-client.ts";
export { keepTicket, requestTicket } from "./ticket-keeper.ts";
export { startServeReporter } from "./serve-reporter.ts";
export { meshNodeOptions, startMeshNode } from "./p2p-node.ts";
export type { MeshIdentity, MeshNode, MeshNodeInit } from "./p2p-node.ts";
export { INFER_PROTOCOL, serveInfer } from "./infer-protocol.ts";
export { readStreamFrames, writeFrame } from "./stream-frames.ts";
export { startMeshRole } from "./mesh.ts";
export type { MeshRole } from "./mesh.ts";

// The split: stage candidates, their plan, the stage protocol and the coordinator's pipeline.
export { createSplitNode } from "./split-node.ts";
export type { SplitNode, SplitReport } from "./split-node.ts";
export { planId, planStages } from "./stage-plan.ts";
export type { StageCandidate, StagePlan } from "./stage-plan.ts";
export { createPipelineBatch } from "./pipeline-batch.ts";
export {
  localStageCall,
  STAGE_PROTOCOL,
  StageFailedError,
  StageRefusal,
} from "./stage-protocol.ts";
export type { StageLease, StageOpen } from "./stage-protocol.ts";
