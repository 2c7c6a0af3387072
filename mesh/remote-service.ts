/**
 * An InferenceService whose requests run on serving nodes of the mesh. The model list and the
 * candidates come from the relay's latest mesh status (kind 30621); the router picks one; a
 * peer that fails before its first token is marked and another is tried, so a dead node costs a
 * retry, not the request. One that dies after tokens went out to the caller (noticed within 3 s:
 * infer-protocol.ts) is replaced mid-stream: another node of the model (feature `resume`) gets
 * the request with the answer's tokens so far and the sampler's RNG state after them, sends those
 * tokens again (dropped here) and goes on, so the caller's stream has nothing repeated or missing
 * (docs/protocol.md#failover). Only when no node can go on does the stream end with an
 * `unavailable` error event: the text so far cannot be taken back, and a hang is never an answer.
 * Only entry targets take requests (docs/protocol.md#entry-targets): the whole model, or stage 0
 * of a complete split plan; a waiting split candidate or a later stage never answers a client.
 */
import {
  isEntryTarget,
  type Logger,
  type MeshStatus,
  type ServeTarget,
  targetsOfModel,
} from "../protocol/mod.ts";
import { FEATURE_FIELDS, missingFeatures } from "./request-features.ts";
import { type EmbedCall, routeEmbed } from "./remote-embed.ts";
import { routeTokenizer, type TokenizerCall } from "./remote-tokenizer.ts";
import { type AutoCandidate, type AutoNeeds, pickAutoModel } from "./auto-model.ts";
import type { Router } from "./router.ts";
import { affinityKey, continues } from "./affinity-key.ts";
import {
  type EmbedRequest,
  type EmbedResult,
  errorEvent,
  type InferenceService,
  type InferEvent,
  type InferRequest,
  MESH_DENIED_MESSAGE,
  type ModelInfo,
  ServiceError,
  type ServiceLoad,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "./service.ts";

/** One request on one peer over `/grove/infer/1` (infer-protocol.ts `callInfer`, bound to a node). */
export type InferCall = (
  target: { peerId: string; addrs: string[] },
  req: InferRequest,
  signal: AbortSignal,
) => AsyncIterable<InferEvent>;

export interface RemoteServiceInit {
  call: InferCall;
  /** An embeddings request on one peer; without it, embeddings go to the local model only. */
  embed?: EmbedCall;
  /** A tokenizer request on one peer; without it, only the local model's tokenizer answers. */
  tokenizer?: TokenizerCall;
  router: Router;
  /** The latest verified mesh status; undefined until the relay sent one. */
  status: () => MeshStatus | undefined;
  /** true when this node holds a ticket; otherwise why not (a denial, or still waiting). */
  admitted: () => true | { denied: boolean; reason: string };
  /** This node's own peer id: its own serve target is reached through `local`, not the mesh. */
  selfPeerId?: string;
  /** A serving node's own model, answered in process (its features, for `model: "auto"`). */
  local?: {
    modelId: string;
    service: InferenceService & { features?(): readonly string[] };
  };
  log?: Logger;
  /** Peers tried per embeddings or tokenizer request before giving up; default 3. */
  maxTries?: number;
  /**
   * How long an inference request keeps being tried, from its start, while every node of its
   * model fails (default 60 s): each node once per round, then a pause (RETRY_PAUSE_MS, doubling)
   * and another round, so a node that is only slow to answer a dial under load still gets it.
   * 0: each node once.
   */
  retryMs?: number;
  now?: () => number;
  /** Waits `ms` or until `signal` aborts (default: a timer); tests pass a fake one. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const RETRY_MS = 60_000;
/** The first pause after a round in which every node failed; it doubles up to RETRY_PAUSE_MAX_MS. */
const RETRY_PAUSE_MS = 250;
const RETRY_PAUSE_MAX_MS = 2000;

export interface RemoteService extends InferenceService {
  load(): ServiceLoad;
  embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult>;
  tokenizer(req: TokenizerRequest, signal: AbortSignal): Promise<TokenizerAnswer>;
  chooseModel(needs: AutoNeeds): Promise<string>;
}

export function createRemoteService(init: RemoteServiceInit): RemoteService {
  const maxTries = init.maxTries ?? 3;
  const retryMs = init.retryMs ?? RETRY_MS;
  const log = init.log;
  const now = init.now ?? (() => performance.now());
  const sleep = init.sleep ?? pause;
  let active = 0;

  function checkAdmitted(): void {
    const a = init.admitted();
    if (a === true) return;
    if (a.denied) throw new ServiceError("mesh_denied", MESH_DENIED_MESSAGE);
    throw new ServiceError("unavailable", `This node is not in the mesh yet: ${a.reason}`);
  }

  /** Other peers' targets of `model`, entry targets or not: O(targets of the model). */
  function offering(model: string): ServeTarget[] {
    return targetsOfModel(init.status(), model).filter((t) => t.peerId !== init.selfPeerId);
  }

  const entryTargets = (model: string) => offering(model).filter(isEntryTarget);

  /** The entry targets that advertise every feature the request needs. */
  const targetsFor = (req: InferRequest) =>
    entryTargets(req.model).filter((t) => missingFeatures(req, t.features).length === 0);

  async function models(): Promise<ModelInfo[]> {
    const local = (await init.local?.service.models()) ?? [];
    if (init.admitted() !== true) {
      if (local.length > 0) return local;
      checkAdmitted();
    }
    const seen = new Set(local.map((m) => m.id));
    const out = [...local];
    for (const t of init.status()?.serveTargets ?? []) {
      if (seen.has(t.modelId) || t.peerId === init.selfPeerId || !isEntryTarget(t)) continue;
      seen.add(t.modelId);
      out.push({ id: t.modelId, name: t.modelName || t.modelId, ownedBy: "grove-mesh" });
    }
    return out;
  }

  async function* infer(req: InferRequest, signal: AbortSignal): AsyncGenerator<InferEvent> {
    const local = init.local;
    if (local && req.model === local.modelId) return yield* local.service.infer(req, signal);
    if (local && (await local.service.models()).some((m) => m.name === req.model)) {
      return yield* local.service.infer(req, signal);
    }
    try {
      checkAdmitted();
    } catch (err) {
      return yield errorEvent(err as ServiceError);
    }
    const entries = entryTargets(req.model);
    if (entries.length === 0) {
      const split = offering(req.model).length;
      return yield errorEvent(
        split > 0 ? splitNotReady(req.model, split) : notOffered(req.model, init.status()),
      );
    }
    if (targetsFor(req).length === 0) return yield errorEvent(noFeature(req, entries));
    active++;
    try {
      yield* route(req, signal);
    } finally {
      active--;
    }
  }

  /**
   * Tries nodes of the model until one answers whole, within `retryMs` of the start: each node
   * once a round, then, if some node was only slow (busy, or a limit ran out: a node under load),
   * a pause and the next round; a round in which every node refused or reset ends it at once. Before the first token any node may take it; after,
   * each other node in turn is asked to continue the answer (one round: a node that died
   * mid-answer is not asked again, nor one whose pings go unanswered now), and with none left the stream ends with `unavailable` at once. Each try after the first is one line in
   * the log ("retrying a request", "failing over an answer"): the scale bench counts them.
   */
  async function* route(req: InferRequest, signal: AbortSignal): AsyncGenerator<InferEvent> {
    const started = now();
    /** Nodes tried since the last pause (or the last death). */
    let round = new Set<string>();
    /** Some node of this round is there but slow (busy, timed out): another round may do. */
    let slow = false;
    /** Nodes that died mid-answer: the answer is never handed back to them. */
    const died = new Set<string>();
    const failures: string[] = [];
    let pauseMs = RETRY_PAUSE_MS;
    // Greedy answers need no RNG state to go on; sampled ones ask each token for it.
    const sampled = req.params.temperature !== 0;
    const asked: InferRequest = sampled ? { ...req, resumable: true } : req;
    const sofar: Progress = { tokens: [], calls: 0 };
    // The node that answered this conversation's last turn holds its prompt's cache.
    const affinity = affinityKey(req);
    /** The node that died mid-answer, and where its failure is in `failures`. */
    let lost: { target: ServeTarget; why: string; at: number } | undefined;
    /** The last failed try, for the next try's log line. */
    let last: { target: ServeTarget; why: string } | undefined;
    while (!signal.aborted) {
      const resuming = sofar.tokens.length > 0;
      const next = resuming ? resumeRequest(asked, sofar, sampled) : asked;
      if (!next) break; // a sampled answer whose RNG state never came: it cannot go on
      // An answer cut mid-stream goes on only on a node that answers its pings: a frozen one
      // would take a further 3 s of silence to give up on while the caller waits mid-text.
      const candidates = targetsFor(next).filter((t) =>
        !died.has(t.peerId) && !(resuming && init.router.silent(t.peerId))
      );
      if (candidates.length === 0) break;
      const target = init.router.pick(candidates, round, continues(req) ? affinity : undefined);
      if (!target) {
        // Every node failed this round: pause, then all of them again, within the bound. An
        // answer cut mid-stream gets one round: its caller is waiting in the middle of the text.
        const pause = pauseMs * (0.75 + Math.random() / 2); // jitter: clients do not retry in step
        if (resuming || !slow || now() - started + pause > retryMs) break;
        await sleep(pause, signal);
        pauseMs = Math.min(pauseMs * 2, RETRY_PAUSE_MAX_MS);
        round = new Set();
        slow = false;
        continue;
      }
      round.add(target.peerId);
      if (last) {
        const from = last.target.nodeName || last.target.peerId;
        const to = target.nodeName || target.peerId;
        const tries = `try ${failures.length + 1}, ${((now() - started) / 1000).toFixed(1)} s`;
        log?.info(
          resuming
            ? `failing over an answer of ${req.model} from ${from} to ${to} after ` +
              `${sofar.tokens.length} tokens (${tries}; ${from}: ${last.why})`
            : `retrying a request for ${req.model} on ${to} (${tries}; ${from}: ${last.why})`,
        );
      }
      const had = sofar.tokens.length;
      const outcome = yield* attempt(target, next, signal, sofar, affinity);
      if (outcome === "finished") return;
      failures.push(`${target.nodeName || target.peerId}: ${outcome.why}`);
      last = { target, why: outcome.why };
      slow ||= outcome.slow;
      if (sofar.tokens.length > had) {
        // It died mid-answer: every other node may continue it, however the round went.
        died.add(target.peerId);
        round = new Set();
        pauseMs = RETRY_PAUSE_MS;
      }
      if (sofar.tokens.length > 0) lost ??= { target, why: outcome.why, at: failures.length };
    }
    if (signal.aborted) return;
    const spent = `${failures.length} tries in ${((now() - started) / 1000).toFixed(1)} s`;
    if (failures.length > 0) log?.warn(`gave up on a request for ${req.model} after ${spent}`);
    if (lost) {
      const tries = failures.slice(lost.at);
      const others = tries.length > 0 ? ` (tried: ${tries.join("; ")})` : "";
      return yield cutOff(
        lost.target,
        `failed: ${lost.why}`,
        `no other node could continue it${others}`,
      );
    }
    const what = failures.length === 0
      ? "every serving node of it failed in the last 10 s"
      : `tried ${failures.length}: ${failures.slice(-5).join("; ")}`;
    yield errorEvent(
      new ServiceError("unavailable", `No serving node for \`${req.model}\` answered (${what}).`),
    );
  }

  /**
   * One peer. "finished": the caller got a whole answer (or gave up); else why to try another,
   * with `sofar` holding what the caller already has (a continuation's peer sends those tokens
   * and tool calls again first: they are dropped here).
   */
  async function* attempt(
    target: ServeTarget,
    req: InferRequest,
    signal: AbortSignal,
    sofar: Progress,
    affinity?: string,
  ): AsyncGenerator<InferEvent, "finished" | { why: string; slow: boolean }> {
    const end = init.router.begin(target.peerId);
    const started = now();
    const skipTokens = sofar.tokens.length;
    const skipCalls = sofar.calls;
    let tokens = 0;
    let calls = 0;
    let first = true;
    const fresh = () => tokens > skipTokens;
    try {
      for await (const event of init.call(target, req, signal)) {
        if (first) {
          first = false;
          if (event.type !== "error") init.router.markOk(target.peerId, now() - started);
        }
        if (event.type === "error" && !fresh() && retryable(event.code)) {
          // A full queue is a healthy node under load: try another, but don't avoid it for 10 s.
          if (event.code !== "busy") init.router.markFailed(target.peerId);
          return { why: event.message, slow: event.code === "busy" };
        }
        if (event.type === "error" && event.code === "unavailable" && sofar.tokens.length > 0) {
          init.router.markFailed(target.peerId); // it gave up mid-answer: another may go on
          return { why: event.message, slow: false };
        }
        if (event.type === "token") {
          if (++tokens <= skipTokens) continue; // the caller has it from the node before
          sofar.tokens.push(event.id);
          sofar.before = sofar.rng;
          if (event.rng) sofar.rng = event.rng;
          else sofar.rng = undefined; // a peer that does not say: no way on past this token
        } else if (event.type === "tool_call") {
          if (++calls <= skipCalls) continue;
          sofar.calls++;
        }
        if (event.type === "done" && affinity) init.router.remember(affinity, target.peerId);
        yield event;
        if (event.type === "done" || event.type === "error") return "finished";
      }
      if (signal.aborted) return "finished";
      init.router.markFailed(target.peerId);
      return {
        why: fresh()
          ? "it closed the stream before finishing"
          : "the stream closed without an answer",
        slow: false,
      };
    } catch (err) {
      if (signal.aborted) return "finished";
      init.router.markFailed(target.peerId);
      const why = err instanceof Error ? err.message : String(err);
      return { why, slow: timedOut(why) };
    } finally {
      end();
    }
  }

  async function embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    const local = init.local;
    const mine = local && (req.model === local.modelId ||
      (await local.service.models()).some((m) => m.name === req.model));
    if (local && mine) {
      if (!local.service.embed) {
        throw new ServiceError("invalid_request", `\`${req.model}\` serves no embeddings here`);
      }
      return await local.service.embed(req, signal);
    }
    checkAdmitted();
    if (entryTargets(req.model).length === 0) {
      const split = offering(req.model).length;
      throw split > 0 ? splitNotReady(req.model, split) : notOffered(req.model, init.status());
    }
    const call = init.embed ?? (() => Promise.reject(new ServiceError("unavailable", "no mesh")));
    active++;
    try {
      const targets = () => entryTargets(req.model);
      return await routeEmbed({ call, router: init.router, targets, maxTries }, req, signal);
    } finally {
      active--;
    }
  }

  /** llama.cpp's /tokenize, /detokenize, /props: the own model here, another on a node of it. */
  async function tokenizer(req: TokenizerRequest, signal: AbortSignal): Promise<TokenizerAnswer> {
    const local = init.local;
    const mine = local && (req.model === local.modelId ||
      (await local.service.models()).some((m) => m.name === req.model));
    if (local && mine) {
      if (!local.service.tokenizer) {
        throw new ServiceError("invalid_request", `\`${req.model}\` answers no tokenizer requests`);
      }
      return await local.service.tokenizer(req, signal);
    }
    checkAdmitted();
    if (entryTargets(req.model).length === 0) {
      const split = offering(req.model).length;
      throw split > 0 ? splitNotReady(req.model, split) : notOffered(req.model, init.status());
    }
    const call = init.tokenizer ??
      (() => Promise.reject(new ServiceError("unavailable", "no mesh")));
    const targets = () => entryTargets(req.model);
    return await routeTokenizer({ call, router: init.router, targets, maxTries }, req, signal);
  }

  /** `model: "auto"`: this node's own model and every entry target, as candidates. */
  async function chooseModel(needs: AutoNeeds): Promise<string> {
    const candidates: AutoCandidate[] = [];
    const local = init.local;
    if (local) {
      const [info] = await local.service.models();
      const load = local.service.load?.() ?? { active: 0, queued: 0 };
      candidates.push({
        id: local.modelId,
        contextLength: info?.contextLength,
        features: local.service.features?.() ?? [],
        local: true,
        load: load.active + load.queued,
      });
    }
    if (init.admitted() === true) {
      for (const t of init.status()?.serveTargets ?? []) {
        if (t.peerId === init.selfPeerId || !isEntryTarget(t)) continue;
        const load = t.load.active + t.load.queued + init.router.activeOn(t.peerId);
        candidates.push({ id: t.modelId, features: t.features ?? [], local: false, load });
      }
    } else if (!local) checkAdmitted();
    return pickAutoModel(candidates, needs);
  }

  return {
    models,
    infer,
    embed,
    tokenizer,
    chooseModel,
    load: () => ({ active, queued: 0 }),
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A failure that is a limit running out (a dial, the ticket exchange, a silence) rather than a
 * refusal or a reset: the node may be there but slow, as every node is under heavy load. The
 * messages are this module's dependencies' own (stream-frames.ts, ticket-exchange.ts).
 */
function timedOut(why: string): boolean {
  return /\b(?:within|for|after) \d+ ms\b|timed out|timeout/i.test(why);
}

/** A peer's own `unavailable` (or a stale listing) says nothing against the other peers. */
function retryable(code: string): boolean {
  return code === "unavailable" || code === "model_not_found" || code === "busy";
}

function cutOff(target: ServeTarget, what: string, why: string): InferEvent {
  return errorEvent(
    new ServiceError(
      "unavailable",
      `The serving node ${target.nodeName || target.peerId} ${what} mid-generation; ${why}, ` +
        "so the answer is incomplete.",
    ),
  );
}

/** What the caller has of the answer: its tokens, the RNG state after the last, its tool calls. */
interface Progress {
  tokens: number[];
  rng?: number[];
  /** The RNG state before the last token (after the one before it). */
  before?: number[];
  calls: number;
}

/**
 * The request that continues the answer on another node (docs/protocol.md#failover); undefined
 * when a sampled answer's RNG state is unknown (its node did not send it), so no node can draw
 * the same tokens on.
 */
function resumeRequest(
  req: InferRequest,
  sofar: Progress,
  sampled: boolean,
): InferRequest | undefined {
  // A node that died after the last token max_tokens allows but before its `done`: a node can
  // take no resume that leaves nothing to generate, so the last token is generated again (from
  // the state before it: the same token, dropped here) and its `done` comes after it.
  const full = sofar.tokens.length >= (req.params.max_tokens ?? Infinity);
  const tokens = full ? sofar.tokens.slice(0, -1) : [...sofar.tokens];
  const rng = full ? sofar.before : sofar.rng;
  if (sampled && !rng) return undefined;
  return { ...req, resume: rng ? { tokens, rng } : { tokens } };
}

function notOffered(model: string, status: MeshStatus | undefined): ServiceError {
  if (status === undefined) {
    return new ServiceError(
      "unavailable",
      "The relay has not sent the mesh status yet; no serving node is known.",
    );
  }
  const offered = [...new Set(status.serveTargets.filter(isEntryTarget).map((t) => t.modelId))];
  return new ServiceError(
    "model_not_found",
    `The model \`${model}\` is not offered by the mesh right now` +
      (offered.length > 0 ? ` (offered: ${offered.join(", ")}).` : " (no model is offered)."),
  );
}

/** Every serving node of the model lacks a feature the request needs: the request's fault. */
function noFeature(req: InferRequest, targets: ServeTarget[]): ServiceError {
  // Name what the best-equipped node still lacks, not every feature some node lacks.
  const fewest = targets.map((t) => missingFeatures(req, t.features))
    .reduce((a, b) => b.length < a.length ? b : a);
  const fields = fewest.map((f) => FEATURE_FIELDS[f]);
  return new ServiceError(
    "invalid_request",
    `No serving node of \`${req.model}\` supports ${fields.join(" with ")} yet ` +
      `(${targets.length} ${targets.length === 1 ? "node serves" : "nodes serve"} it).`,
  );
}

/** Split candidates hold the model, but no plan has all its stages ready: a wait, not a 404. */
function splitNotReady(model: string, candidates: number): ServiceError {
  return new ServiceError(
    "unavailable",
    `The model \`${model}\` is being split across serving nodes and its stages are not all ` +
      `ready yet (${candidates} split ${candidates === 1 ? "candidate" : "candidates"} ` +
      "known); try again shortly.",
  );
}
