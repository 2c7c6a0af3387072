/** A node's HTTP side: the OpenAI API, node API, health, metrics and dashboard. */
export { createNodeApp } from "./app.ts";
export type { NodeApp, NodeAppDeps } from "./app.ts";
export { apiKeyAuth, PUBLIC_PATHS } from "./api-key.ts";
export { type BrowserAccess, browserGuard } from "./browser-guard.ts";
export { hostnameOf, isIpLiteral, isLoopbackName } from "./host-names.ts";
export { DEFAULT_MAX_BODY, formatBytes, NODE_API_MAX_BODY } from "./limits.ts";
export { errorBody, errorResponse, HttpError, toHttpError } from "./errors.ts";
export type { ErrorBody } from "./errors.ts";
export type { HealthState } from "./health.ts";
export { createMetrics } from "./metrics.ts";
export type { InferenceRecord, Metrics } from "./metrics.ts";
export type {
  Availability,
  InstalledModel,
  NodeHooks,
  NodeState,
  NodeStatus,
  ServeTarget,
  StartOptions,
} from "./node-api.ts";
export { readSse, SSE_DONE, sseEvent } from "./sse.ts";
export { OPENAI_DEFAULTS, OPENAI_LIMITS } from "./validate.ts";
