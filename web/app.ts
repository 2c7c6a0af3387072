/**
 * A node's HTTP face (docs/http-api.md): the OpenAI API, health, metrics, the node
 * API and the dashboard, over an InferenceService. Exposes `fetch`, so tests
 * call it in process; `Deno.serve` lives with whoever starts the node.
 */
import { Hono } from "hono";
import type { InferenceService, LocalModelView } from "../mesh/mod.ts";
import { countTokensRoute, messagesRoute } from "./anthropic-messages.ts";
import { responsesRoutes } from "./openai-responses.ts";
import { apiKeyAuth } from "./api-key.ts";
import { bodyLimit } from "./body-limit.ts";
import { type BrowserAccess, browserGuard } from "./browser-guard.ts";
import { errorResponse, HttpError } from "./http-error.ts";
import { healthRoute, type HealthState } from "./health.ts";
import { llamaCppRoutes } from "./llama-cpp.ts";
import { DEFAULT_MAX_BODY, NODE_API_MAX_BODY } from "./limits.ts";
import { createMetrics, type Metrics, METRICS_CONTENT_TYPE } from "./metrics.ts";
import { createNodeApi, type NodeHooks } from "./node-api.ts";
import { createMembersApi, type MemberHooks } from "./members-api.ts";
import { createModelsApi, type ModelsHooks } from "./models-api.ts";
import { chatCompletionsRoute } from "./openai-chat.ts";
import { completionsRoute } from "./openai-completions.ts";
import { modelRoute, modelsRoute } from "./openai-models.ts";
import { embeddingsRoute } from "./openai-embeddings.ts";
import { ollamaRoutes } from "./ollama-api.ts";
import { OLLAMA_INFERENCE_PATHS } from "./ollama-request.ts";
import { DASHBOARD_PATHS, dashboardResponse } from "./ui/routes.ts";
import { createRecentTimings, withRecentTimings } from "./recent-timings.ts";

export interface NodeAppDeps {
  service: InferenceService;
  /** When set, every route but /health and /ui needs `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Default: always "ok" (the service is ready once the app exists). */
  health?: () => HealthState;
  node?: NodeHooks & ModelsHooks & MemberHooks;
  /** "serve" | "client" | "demo" …, shown in /api/status; default "local". */
  mode?: string;
  apiBaseUrl?: string;
  metrics?: Metrics;
  /** Names and web pages that may reach the node (docs/http-api.md); default: loopback, no page. */
  browser?: BrowserAccess;
  /** The largest body a /v1 route reads (`--max-body`); default DEFAULT_MAX_BODY. */
  maxBody?: number;
  /** The model this node serves itself (a serving node): /tokenize, /props and /api/show read it. */
  local?: LocalModelView;
}

/** Routes outside /v1 that take a prompt: they get the /v1 body limit. */
const PROMPT_PATHS: ReadonlySet<string> = new Set([
  ...OLLAMA_INFERENCE_PATHS,
  "/tokenize",
  "/detokenize",
]);

export interface NodeApp {
  fetch(req: Request): Promise<Response>;
  metrics: Metrics;
}

export function createNodeApp(deps: NodeAppDeps): NodeApp {
  const { service } = deps;
  const metrics = deps.metrics ?? createMetrics();
  const health = deps.health ?? (() => "ok" as const);
  const app = new Hono();

  app.use(async function countRequests(c, next) {
    metrics.inFlight(1);
    try {
      await next();
    } finally {
      metrics.inFlight(-1);
      // The route pattern, not the raw path, keeps label values bounded.
      const matched = c.res.status === 404 && c.req.routePath === "/*"
        ? "unmatched"
        : c.req.routePath;
      metrics.httpRequest(matched, c.res.status);
    }
  });
  // Pages and names first, so a refused page learns nothing else; then the key; then the body.
  app.use(browserGuard(deps.browser));
  if (deps.apiKey !== undefined) app.use(apiKeyAuth(deps.apiKey));
  const v1Limit = { bytes: deps.maxBody ?? DEFAULT_MAX_BODY, flag: "--max-body" };
  const apiLimit = { bytes: NODE_API_MAX_BODY };
  app.use(
    bodyLimit((path) => path.startsWith("/v1/") || PROMPT_PATHS.has(path) ? v1Limit : apiLimit),
  );

  const timings = createRecentTimings();
  const inferDeps = { service, metrics: withRecentTimings(metrics, timings) };
  const chat = chatCompletionsRoute(inferDeps);
  const completions = completionsRoute(inferDeps);
  const models = modelsRoute(service);
  const model = modelRoute(service);
  app.post("/v1/chat/completions", (c) => chat(c.req.raw));
  app.post("/v1/completions", (c) => completions(c.req.raw));
  const messages = messagesRoute(inferDeps);
  app.post("/v1/messages", (c) => messages(c.req.raw));
  const countTokens = countTokensRoute(inferDeps);
  app.post("/v1/messages/count_tokens", (c) => countTokens(c.req.raw));
  const responses = responsesRoutes(inferDeps);
  app.post("/v1/responses", (c) => responses.create(c.req.raw));
  app.get("/v1/responses/:id", (c) => responses.get(c.req.param("id")));
  const embeddings = embeddingsRoute(service);
  app.post("/v1/embeddings", (c) => embeddings(c.req.raw));
  app.get("/v1/models", () => models());
  app.get("/v1/models/:id{.+}", (c) => model(c.req.param("id")));

  // Read at each request: a node's runtime may load or drop its model while the app lives.
  const llama = llamaCppRoutes({
    service,
    get local() {
      return deps.local;
    },
  });
  app.post("/tokenize", (c) => llama.tokenize(c.req.raw));
  app.post("/detokenize", (c) => llama.detokenize(c.req.raw));
  app.get("/props", (c) => llama.props(c.req.raw));
  const ollama = ollamaRoutes({
    ...inferDeps,
    get local() {
      return deps.local;
    },
  });
  app.get("/api/tags", () => ollama.tags());
  app.get("/api/version", () => ollama.version());
  app.post("/api/show", (c) => ollama.show(c.req.raw));
  app.post("/api/chat", (c) => ollama.chat(c.req.raw));
  app.post("/api/generate", (c) => ollama.generate(c.req.raw));
  app.post("/api/embed", (c) => ollama.embed(c.req.raw));

  app.get("/health", healthRoute(health));
  app.get("/metrics", () =>
    new Response(metrics.render(service.load?.()), {
      headers: { "content-type": METRICS_CONTENT_TYPE },
    }));

  const node = createNodeApi({
    service,
    hooks: deps.node ?? {},
    health,
    mode: deps.mode ?? "local",
    apiBaseUrl: deps.apiBaseUrl,
    apiKey: deps.apiKey,
  });
  app.get("/api/status", (c) => node.status(c.req.raw));
  app.get("/api/availability", (c) => node.availability(c.req.raw));
  app.get("/api/models/installed", (c) => node.installed(c.req.raw));
  app.post("/api/models/pull", (c) => node.pull(c.req.raw));
  app.delete("/api/models/installed/*", (c) => node.remove(c.req.raw));
  const modelsApi = createModelsApi(deps.node ?? {});
  app.get("/api/models/catalog", (c) => modelsApi.catalog(c.req.raw));
  app.get("/api/models/reference", (c) => modelsApi.reference(c.req.raw));
  const members = createMembersApi(deps.node ?? {});
  app.get("/api/members", (c) => members.list(c.req.raw));
  app.post("/api/members", (c) => members.add(c.req.raw));
  app.delete("/api/members/:npub", (c) => members.remove(c.req.raw));
  app.get("/api/timings", () => Response.json({ recent: timings.recent() }));
  app.get("/api/agent-preset", (c) => node.agentPreset(c.req.raw));
  app.post("/api/node/start", (c) => node.start(c.req.raw));
  app.post("/api/node/stop", (c) => node.stop(c.req.raw));
  for (const path of DASHBOARD_PATHS) app.get(path, () => dashboardResponse(path));
  app.get("/", (c) => c.redirect("/ui"));

  app.notFound((c) =>
    errorResponse(
      new HttpError(
        404,
        `no route for ${c.req.method} ${c.req.path}`,
        "invalid_request_error",
        "not_found",
      ),
    )
  );
  app.onError((err) => errorResponse(err));

  return { fetch: (req) => Promise.resolve(app.fetch(req)), metrics };
}
