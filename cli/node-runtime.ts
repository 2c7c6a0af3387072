/**
 * A node's runtime (docs/http-api.md#runtime): what starts and stops while the node's HTTP
 * listener stays up: the mesh role (client or serve) and, serving, the loaded model.
 *
 *   off ──start──▶ starting ──▶ running ──stop──▶ stopping ──▶ off
 *                     │            │ start (another mode or model): starting, then running
 *                     └──▶ failed ◀┘ (a start that failed; a later start or stop is allowed)
 *
 * Parts are injected (`RuntimeParts`), so this file is only the decisions: what a start while
 * running does (prepare the new runtime first, then drain and stop the old one, then join: the
 * gap without a runtime is the join's), what callers get in each state, and the drain (the
 * requests inside get DRAIN_MS to finish, then a clear error). One role at a time: the old one
 * is stopped before the new one joins, since both would be the same libp2p peer.
 */
import { type InferenceService, type LocalModelView, ServiceError } from "../mesh/mod.ts";
import { createGate, type Gate } from "./runtime-gate.ts";

export type RuntimeState = "off" | "starting" | "running" | "stopping" | "failed";
export type RuntimeMode = "serve" | "client";

/** What a start asks for (POST /api/node/start, or the command's flags). */
export interface RuntimeRequest {
  mode: RuntimeMode;
  /** Serve only: a catalog id, hf://… or a local path, as --model takes. */
  modelId?: string;
  maxMemory?: number;
  gpu?: boolean;
}

export interface Progress {
  phase: "downloading" | "hashing" | "loading" | "joining";
  bytes?: number;
  total?: number;
  /** Bytes a second. */
  rate?: number;
  /** Seconds left. */
  eta?: number;
}

/** A runtime in the mesh. */
export interface RuntimeRole {
  service: InferenceService;
  /** The model this node serves itself, for /props, /tokenize and /api/show. */
  local?: LocalModelView;
  status(): Record<string, unknown>;
  availability(): Record<string, unknown>;
  stop(): Promise<void>;
}

/** What a start made ready before the old role goes: the loaded model, say. */
export interface PreparedRuntime {
  modelId: string | null;
  modelName: string | null;
  join(): Promise<RuntimeRole>;
  /** Frees what was prepared when the join never happened or failed. */
  discard(): void | Promise<void>;
}

export interface RuntimeParts {
  /**
   * Loads what `req` needs without joining the mesh. `gate` is the new runtime's door: a
   * serving runtime puts the service it offers peers behind it, so peers' requests drain too.
   */
  prepare(
    req: RuntimeRequest,
    ctx: { gate: Gate; progress(p: Progress): void },
  ): Promise<PreparedRuntime>;
}

/** How long requests inside a stopping runtime may go on (docs/http-api.md#runtime). */
export const DRAIN_MS = 10_000;

export const OFF_MESSAGE = "this node is off: start it from /ui or POST /api/node/start";
export const STOPPING_MESSAGE = "this node is stopping";

/** A start or stop refused because another is under way: 409 on the node API. */
export class RuntimeConflict extends Error {
  override name = "RuntimeConflict";
  readonly code = "conflict";
}

export interface RuntimeView {
  state: RuntimeState;
  mode: RuntimeMode;
  modelId: string | null;
  modelName: string | null;
  progress: Progress | null;
  /** Why the last start failed (state "failed"). */
  reason: string | null;
}

export interface NodeRuntimeInit {
  /** The mode shown while nothing ran yet: the command's. */
  mode: RuntimeMode;
  drainMs?: number;
}

export interface Transition {
  /** What the node API answers at once. */
  state: RuntimeState;
  /** Settles when the work behind it is done: rejects with a failed start's error. */
  done: Promise<void>;
}

export interface NodeRuntime {
  /** Delegates to the running role's service; refuses in words in every other state. */
  service: InferenceService;
  view(): RuntimeView;
  /** The role now in the mesh, a draining one included. */
  role(): RuntimeRole | undefined;
  /** Whether requests get through now (a role runs and its gate is open). */
  accepting(): boolean;
  local(): LocalModelView | undefined;
  /** Throws RuntimeConflict while starting or stopping. */
  start(req: RuntimeRequest): Transition;
  stop(): Transition;
  /** Process shutdown: stops the role at once, no drain (the process has 1.7 s to end). */
  close(): Promise<void>;
}

interface Current {
  role: RuntimeRole;
  gate: Gate;
  req: RuntimeRequest;
}

export function createNodeRuntime(parts: RuntimeParts, init: NodeRuntimeInit): NodeRuntime {
  const drainMs = init.drainMs ?? DRAIN_MS;
  const view: RuntimeView = {
    state: "off",
    mode: init.mode,
    modelId: null,
    modelName: null,
    progress: null,
    reason: null,
  };
  let current: Current | undefined;

  const busy = () => {
    if (view.state === "starting" || view.state === "stopping") {
      const doing = view.state === "starting"
        ? `starting (${view.mode}${view.modelId ? ` ${view.modelId}` : ""})`
        : "stopping";
      throw new RuntimeConflict(`the node is ${doing}: wait until it is done, then ask again`);
    }
  };

  /** Drains and stops the running role; the node is without one afterwards. */
  async function retire(was: Current): Promise<void> {
    was.gate.close(STOPPING_MESSAGE);
    await was.gate.drain(
      drainMs,
      `the node stopped: this request was still running ${drainMs / 1000} s after the stop began`,
    );
    current = undefined;
    await was.role.stop();
  }

  function fail(err: unknown) {
    view.state = "failed";
    view.progress = null;
    view.reason = err instanceof Error ? err.message : String(err);
  }

  async function run(req: RuntimeRequest, gate: Gate): Promise<void> {
    let prepared: PreparedRuntime;
    try {
      prepared = await parts.prepare(req, { gate, progress: (p) => view.progress = p });
    } catch (err) {
      // Failed means nothing runs: a half-switched node would answer for a mode it is not in.
      if (current) await retire(current);
      fail(err);
      throw err;
    }
    view.modelId = prepared.modelId;
    view.modelName = prepared.modelName;
    try {
      if (current) await retire(current);
      view.progress = { phase: "joining" };
      const joined = await prepared.join();
      current = { role: { ...joined, service: gate.wrap(joined.service) }, gate, req };
    } catch (err) {
      await prepared.discard();
      fail(err);
      throw err;
    }
    view.state = "running";
    view.progress = null;
  }

  function target(): InferenceService {
    if (current?.gate.isOpen()) return current.role.service;
    throw new ServiceError("unavailable", refusal());
  }
  function refusal(): string {
    switch (view.state) {
      case "starting":
        return `this node is starting (${view.mode}): try again once /health answers 200`;
      case "stopping":
        return STOPPING_MESSAGE;
      case "failed":
        return `${OFF_MESSAGE} (its last start failed: ${view.reason})`;
      default:
        return OFF_MESSAGE;
    }
  }

  const service: InferenceService = {
    models: () => {
      try {
        return target().models();
      } catch (err) {
        return Promise.reject(err);
      }
    },
    async *infer(req, signal) {
      yield* target().infer(req, signal);
    },
    load: () => current?.role.service.load?.() ?? { active: 0, queued: 0 },
    embed(req, signal) {
      const s = target();
      if (!s.embed) throw new ServiceError("invalid_request", "this node serves no embeddings");
      return s.embed(req, signal);
    },
    chooseModel(needs) {
      const s = target();
      if (!s.chooseModel) throw new ServiceError("invalid_request", "no model to choose from");
      return s.chooseModel(needs);
    },
    tokenizer(req, signal) {
      const s = target();
      if (!s.tokenizer) {
        throw new ServiceError("invalid_request", "this node answers no tokenizer requests");
      }
      return s.tokenizer(req, signal);
    },
  };

  return {
    service,
    view: () => ({ ...view }),
    role: () => current?.role,
    accepting: () => current?.gate.isOpen() ?? false,
    local: () => current?.gate.isOpen() ? current.role.local : undefined,
    start(req) {
      busy();
      if (view.state === "running" && current && sameRequest(current.req, req)) {
        return { state: "running", done: Promise.resolve() };
      }
      const gate = createGate();
      Object.assign(view, {
        state: "starting",
        mode: req.mode,
        modelId: req.mode === "serve" ? req.modelId ?? null : null,
        modelName: null,
        // Until the parts say more (a download, a hash): a client only joins.
        progress: { phase: req.mode === "serve" ? "loading" : "joining" },
        reason: null,
      });
      return { state: "starting", done: run(req, gate) };
    },
    stop() {
      busy();
      if (view.state !== "running" || !current) {
        Object.assign(view, { state: "off", progress: null, reason: null });
        return { state: "off", done: Promise.resolve() };
      }
      view.state = "stopping";
      const done = retire(current).finally(() => {
        Object.assign(view, { state: "off", progress: null, modelId: null, modelName: null });
      });
      return { state: "stopping", done };
    },
    async close() {
      const was = current;
      current = undefined;
      was?.gate.close(STOPPING_MESSAGE);
      await was?.role.stop();
      view.state = "off";
    },
  };
}

function sameRequest(a: RuntimeRequest, b: RuntimeRequest): boolean {
  return a.mode === b.mode &&
    (a.mode === "client" ||
      (a.modelId === b.modelId && a.maxMemory === b.maxMemory && !!a.gpu === !!b.gpu));
}
