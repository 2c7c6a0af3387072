/** A node's HTTP side: the OpenAI API, node API, health, metrics and dashboard. */
export { createNodeApp } from "./app.ts";
export { type BrowserAccess } from "./browser-guard.ts";
export { hostnameOf, isIpLiteral, isLoopbackName } from "./host-names.ts";
export { DEFAULT_MAX_BODY } from "./limits.ts";
export { errorResponse } from "./http-error.ts";
export { createMetrics } from "./metrics.ts";
export type { ServeTarget } from "./node-api.ts";
export { readSse } from "./sse.ts";
