/**
 * The node API (docs/http-api.md#node-api), for the dashboard and tools. What the node knows
 * beyond the service (its state, peers, serve targets, installed models,
 * starting and stopping) comes from hooks the caller injects; without a
 * hook, status and availability are derived from the service, and the rest
 * answer 501 saying what is missing.
 */
import type { InferenceService, ModelInfo } from "../mesh/mod.ts";
import { errorResponse, HttpError, invalidRequest } from "./http-error.ts";
import { type HealthState, type HealthStatus, healthStatus } from "./health.ts";
import { parseStartBody, type StartOptions } from "./node-start.ts";
import { readJsonBody } from "./validate.ts";
import { agentPreset as agentPresetOf, AGENTS, isAgent, renderShell } from "./agent-presets.ts";

export type { StartOptions };

export type NodeState = "off" | "starting" | "running" | "stopping" | "failed";

export interface NodeStatus {
  state: NodeState;
  mode: string; // "serve" | "client" | "demo" | "local" …
  health: { status: "ok" | "degraded" | "failed"; reason: string | null };
  apiBaseUrl: string;
  modelId: string | null;
  modelName: string | null;
  peers: Record<string, unknown>[];
}

/** A kind-30621 serve target (docs/protocol.md): modelId, modelName, peerId, nodeName, load … */
export type ServeTarget = Record<string, unknown>;

export interface Availability {
  capable: boolean; // this machine can run a model at all
  admitted: boolean; // the relay admitted this node to the mesh
  available: boolean; // a model is reachable now
  reason: string | null;
  models: { id: string; name: string }[];
  serveTargets: ServeTarget[];
}

/** One model on this machine (models/installed.ts); fields beyond id as the hook gives them. */
export interface InstalledModel {
  id: string;
  name?: string;
  path?: string;
  size?: number;
}

/** One NDJSON line of a pull while it downloads. */
export interface PullProgressLine {
  status: "downloading";
  bytes: number;
  total: number | null;
  rate: number;
  eta: number | null; // seconds left; null while the total or the rate is unknown
}

export interface NodeHooks {
  status?(): Promise<Partial<NodeStatus>> | Partial<NodeStatus>;
  availability?(): Promise<Partial<Availability>> | Partial<Availability>;
  installedModels?(): Promise<InstalledModel[]>;
  /** Downloads (resumes, checks) a model; answers its installed entry. */
  pullModel?(
    model: string,
    onProgress: (line: PullProgressLine) => void,
    signal: AbortSignal,
  ): Promise<InstalledModel>;
  /** Removes model `id` from the node's own store; answers what was removed. */
  deleteModel?(id: string): Promise<InstalledModel[]>;
  /**
   * Starts (or switches) the node's runtime in the background: answers the state at once
   * ("starting", or "running" when it already runs as asked). Throws an error with code
   * "conflict" while a start or stop is under way.
   */
  start?(options: StartOptions): Promise<{ state: NodeState }> | { state: NodeState };
  /** Stops the runtime in the background: "stopping", or "off" when nothing ran. */
  stop?(): Promise<{ state: NodeState }> | { state: NodeState };
}

export interface NodeApiDeps {
  service: InferenceService;
  hooks: NodeHooks;
  health: () => HealthState;
  mode: string;
  /** Where agents should point; default: this request's origin + /v1. */
  apiBaseUrl?: string;
  /** Handed to agents in the preset, so they pass the node's own --api-key check. */
  apiKey?: string;
}

export function createNodeApi(deps: NodeApiDeps) {
  const baseUrl = (req: Request) => deps.apiBaseUrl ?? `${new URL(req.url).origin}/v1`;

  async function status(req: Request): Promise<NodeStatus> {
    const { status: health, reason } = healthStatus(deps.health());
    const models = await deps.service.models().catch(() => [] as ModelInfo[]);
    const derived: NodeStatus = {
      state: STATE_OF[health],
      mode: deps.mode,
      health: {
        status: health === "ok" || health === "failed" ? health : "degraded",
        reason: health === "ok"
          ? null
          : reason ?? (health === "loading" ? "loading the model" : `the node is ${health}`),
      },
      apiBaseUrl: baseUrl(req),
      modelId: models[0]?.id ?? null,
      modelName: models[0]?.name ?? null,
      peers: [],
    };
    return { ...derived, ...(await deps.hooks.status?.()) };
  }

  async function availability(): Promise<Availability> {
    let derived: Availability;
    try {
      const models = await deps.service.models();
      derived = {
        capable: true,
        admitted: true,
        available: models.length > 0,
        reason: models.length > 0 ? null : "no model is offered right now",
        models: models.map(({ id, name }) => ({ id, name })),
        serveTargets: [],
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const denied = (err as { code?: string }).code === "mesh_denied";
      derived = {
        capable: true,
        admitted: !denied,
        available: false,
        reason: message,
        models: [],
        serveTargets: [],
      };
    }
    return { ...derived, ...(await deps.hooks.availability?.()) };
  }

  /**
   * A preset for `agent` (default: the OpenAI env, in the flat shape it has always had) and the
   * model asked for (default: the first offered). JSON, or `format=shell` lines to paste.
   */
  async function agentPreset(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const agent = url.searchParams.get("agent");
    if (agent !== null && !isAgent(agent)) {
      throw invalidRequest(
        `agent must be one of ${AGENTS.join(", ")}; got ${JSON.stringify(agent.slice(0, 64))}`,
        "agent",
      );
    }
    const models = await deps.service.models();
    const wanted = url.searchParams.get("model");
    const model = wanted ? models.find((m) => m.id === wanted) : models[0];
    if (!wanted && !model) {
      throw new HttpError(503, "no model is offered right now", "unavailable_error", "unavailable");
    }
    if (!model) {
      throw new HttpError(
        404,
        `The model \`${wanted}\` is not offered right now.`,
        "invalid_request_error",
        "model_not_found",
      );
    }
    const preset = agentPresetOf(agent ?? "openai", {
      model,
      apiBaseUrl: baseUrl(req),
      // SDKs refuse an empty key; a keyless node accepts any.
      apiKey: deps.apiKey ?? "grove",
      keyed: deps.apiKey !== undefined,
    });
    if (url.searchParams.get("format") === "shell") {
      return new Response(renderShell(preset), { headers: { "content-type": "text/plain" } });
    }
    // Without an agent, the openai env alone (the shape tools read before there were presets);
    // with agent=openai, the preset with those same fields beside it.
    if (agent === null) return Response.json(preset.env);
    return Response.json(agent === "openai" ? { ...preset.env, ...preset } : preset);
  }

  async function start(req: Request): Promise<Response> {
    if (!deps.hooks.start) throw notProvided("starting the node", "start");
    const options = parseStartBody(await readJsonBody(req));
    return transition(await runtimeCall(() => deps.hooks.start!(options)));
  }

  async function stop(): Promise<Response> {
    if (!deps.hooks.stop) throw notProvided("stopping the node", "stop");
    return transition(await runtimeCall(() => deps.hooks.stop!()));
  }

  async function installed(): Promise<Response> {
    if (!deps.hooks.installedModels) {
      throw notProvided("listing installed models", "installedModels");
    }
    return Response.json({ models: await deps.hooks.installedModels() });
  }

  async function pull(req: Request): Promise<Response> {
    const hook = deps.hooks.pullModel;
    if (!hook) throw notProvided("pulling models", "pullModel");
    const body = await readJsonBody(req);
    if (typeof body.model !== "string" || body.model.trim() === "") {
      throw invalidRequest("model is required: a catalog id or hf://OWNER/REPO/FILE.gguf", "model");
    }
    const model = body.model;
    const aborter = new AbortController();
    const encoder = new TextEncoder();
    // Progress, then the entry or the error, one JSON object a line: a download takes minutes,
    // so the answer starts at once and a failure arrives as its last line.
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        const line = (value: unknown) => {
          if (!aborter.signal.aborted) {
            controller.enqueue(encoder.encode(JSON.stringify(value) + "\n"));
          }
        };
        try {
          const entry = await hook(model, line, aborter.signal);
          line({ status: "installed", model: entry });
        } catch (err) {
          const http = modelHttpError(err);
          line({ status: "error", error: { message: http.message, code: http.code } });
        }
        if (!aborter.signal.aborted) controller.close();
      },
      cancel() {
        aborter.abort(); // the client went away: the .part stays for the next pull to resume
      },
    });
    return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
  }

  async function remove(req: Request): Promise<Response> {
    if (!deps.hooks.deleteModel) throw notProvided("deleting models", "deleteModel");
    const id = decodeURIComponent(new URL(req.url).pathname.slice("/api/models/installed/".length));
    try {
      return Response.json({ deleted: await deps.hooks.deleteModel(id) });
    } catch (err) {
      throw modelHttpError(err);
    }
  }

  const guard = (handler: (req: Request) => Promise<Response>) => async (req: Request) => {
    try {
      return await handler(req);
    } catch (err) {
      return errorResponse(err);
    }
  };

  return {
    status: guard(async (req) => Response.json(await status(req))),
    availability: guard(async () => Response.json(await availability())),
    installed: guard(installed),
    pull: guard(pull),
    remove: guard(remove),
    agentPreset: guard(agentPreset),
    start: guard(start),
    stop: guard(stop),
  };
}

const STATE_OF: Record<HealthStatus, NodeState> = {
  ok: "running",
  loading: "starting",
  off: "off",
  stopping: "stopping",
  failed: "failed",
};

/** 202 while the work goes on in the background; 200 when there was nothing to do. */
function transition({ state }: { state: NodeState }): Response {
  const busy = state === "starting" || state === "stopping";
  return Response.json({ state }, { status: busy ? 202 : 200 });
}

/** A start or stop while another is under way: 409, in the runtime's words. */
async function runtimeCall<T>(call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if ((err as { code?: unknown })?.code === "conflict") {
      throw new HttpError(409, (err as Error).message, "invalid_request_error", "conflict");
    }
    throw err;
  }
}

function notProvided(what: string, hook: string): HttpError {
  return new HttpError(
    501,
    `${what} is not available on this node: it was started without a "${hook}" hook`,
    "not_implemented_error",
    "not_implemented",
  );
}

/** models/installed.ts's refusals by their code; anything else stays as errorResponse maps it. */
function modelHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown })?.code;
  if (code === "read_only_model") {
    return new HttpError(403, message, "permission_error", "read_only_model");
  }
  if (code === "model_not_found") {
    return new HttpError(404, message, "invalid_request_error", "model_not_found");
  }
  if (err instanceof Error && err.name === "ModelRefError") {
    return new HttpError(400, message, "invalid_request_error", "invalid_model");
  }
  return new HttpError(502, message, "api_error", "pull_failed");
}
