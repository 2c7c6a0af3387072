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
