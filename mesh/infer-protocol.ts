/**
 * `/grove/infer/1` (docs/protocol.md#inference): one request per stream. The client sends one frame
 * `{model, messages|prompt, params}`; the server answers token frames, then one `done` or
 * `error`, and closes. Closing or resetting the stream (or losing the connection) cancels the
 * generation. The client never hangs: connecting and every gap between frames have a limit.
 *
 * Liveness (docs/protocol.md#answers): while a request is in flight the server sends a frame at
 * least every ALIVE_MS (1 s) when nothing else went out: `{"type":"queued","position":n}` before
 * the first event (n: an estimate of the requests ahead of it), `{"type":"alive"}` after it. The
 * timer runs on the event loop, never behind the engine (its long work runs in workers), so a
 * long prompt or a slow step still beats. Clients drop these frames and count a server silent for
 * DEAD_MS (3 s) as dead: a frozen, vanished or cut-off node is noticed in 3 s on any transport.
 *
 * Limits (request-limits.ts, stream-frames.ts): the server checks every request against the
 * widest limits of the HTTP APIs and answers a bad one with a typed `invalid_request` error; a
 * client refuses to send what no server would take (bad params, a request over 8 MiB) before it
 * dials, so such a request never counts against a peer. A client reads answers frame by frame
 * within 256 KiB each and 64 MiB in all, and no more tokens than `max_tokens` asked for: a node
 * that sends more is cut off, as one that fails.
 *
 * Speed: token frames that follow a send within 2 ms leave together (stream-frames.ts
 * `frameWriter`: same frames, fewer sends), and a client keeps one spare stream open to each peer
 * it used (`createInferStreams`), so a request skips the stream's protocol negotiation.
 */
import type { Stream } from "@libp2p/interface";
import type { MeshNode } from "./p2p-node.ts";
import type { AdmittedPeer } from "./ticket-exchange.ts";
import { encodeFrame, type Logger, silentLogger } from "../protocol/mod.ts";
import {
  errorEvent,
  type InferenceService,
  type InferEvent,
  type InferRequest,
  ServiceError,
} from "./service.ts";
import { parseInferRequest, REQUEST_LIMITS } from "./request-limits.ts";
import { answerEmbed } from "./embed-protocol.ts";
import { isEmbedFrame } from "./embed-request.ts";
import { servingFailure } from "./one-piece-answer.ts";
import { answerTokenizerRequest } from "./tokenizer-protocol.ts";
import { isTokenizerFrame } from "./tokenizer-request.ts";
import {
  ALIVE_MS,
  DEAD_MS,
  deadline,
  errorText,
  FrameBudgetError,
  FrameTimeoutError,
  frameWriter,
  MAX_ANSWER_BYTES,
  MAX_EVENT_FRAME_BYTES,
  MAX_REQUEST_FRAME_BYTES,
  readOneFrame,
  readStreamFrames,
  shortPeer,
  StreamEndedError,
} from "./stream-frames.ts";

export const INFER_PROTOCOL = "/grove/infer/1";

export interface InferTimeouts {
  /** Dial, ticket exchange and stream open together. */
  connectMs?: number;
  /** Longest silence between two frames from the server (prompt processing included). */
  idleMs?: number;
  /** Spare streams to reuse (role-peer.ts keeps one set per node); without it, a stream per call. */
  streams?: InferStreams;
}

export interface ServeInferOptions {
  /** The longest the server stays silent while a request is in flight (`queued`, `alive`). */
  keepAliveMs?: number;
  /** How long a new stream may wait for its request: spare streams sit idle up to SPARE_MS. */
  requestMs?: number;
}

/** A client drops a spare stream unused for this long; the server waits longer for a request. */
const SPARE_MS = 20_000;
const DEFAULTS = { connectMs: 10_000, idleMs: DEAD_MS, requestMs: 30_000, keepAliveMs: ALIVE_MS };

const WENT_AWAY = "the serving node went away mid-generation";

/** Answers `/grove/infer/1` streams from admitted members with `service`. */
export async function serveInfer(
  node: MeshNode,
  service: InferenceService,
  log: Logger = silentLogger,
  options: ServeInferOptions = {},
): Promise<void> {
  const keepAliveMs = options.keepAliveMs ?? DEFAULTS.keepAliveMs;
  await node.handle(INFER_PROTOCOL, (stream, remote) => answer(stream, remote));

  async function answer(stream: Stream, { peerId, pubkey }: AdmittedPeer) {
    const out = frameWriter(stream);
    let frame: unknown;
    try {
      frame = await readOneFrame(
        stream,
        options.requestMs ?? DEFAULTS.requestMs,
        MAX_REQUEST_FRAME_BYTES,
      );
    } catch (err) {
      // No request came (an unused spare stream, closed or timed out): nothing to answer. One
      // that cannot be read (over the size limit, not JSON) gets a reason, if the stream still
      // takes one; the rest of it is not read.
      const unread = !(err instanceof FrameTimeoutError || err instanceof StreamEndedError);
      if (unread && stream.status === "open" && stream.writeStatus === "writable") {
        log.warn(`unreadable request from ${shortPeer(peerId)}: ${errorText(err)}`);
        const why = new ServiceError(
          "invalid_request",
          `the request is unreadable: ${errorText(err)}`,
        );
        await out.write(errorEvent(why)).then(() => out.flush()).catch(() => {});
      }
      stream.abort(new Error("no request arrived"));
      return;
    }
    // Embeddings (the frame carries `embed`, docs/protocol.md#embeddings) answer in vectors.
    if (isEmbedFrame(frame)) {
      return answerEmbed(stream, frame, service, { peerId, log, keepAliveMs });
    }
    // Tokenizer requests (`tokenize`, `detokenize`, `props`: docs/protocol.md) answer in one piece.
    if (isTokenizerFrame(frame)) {
      return answerTokenizerRequest(stream, frame, service, { peerId, log, keepAliveMs });
    }
    let req: InferRequest;
    try {
      req = parseInferRequest(frame);
    } catch (err) {
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("invalid_request", errorText(err));
      await out.write(errorEvent(e)).then(() => out.flush()).catch(() => {});
      await stream.close().catch(() => {});
      return;
    }
    const ac = new AbortController();
    // The client closes or resets its end to cancel; a dropped connection closes the stream too.
    const cancel = () => ac.abort(new Error("the client closed the stream"));
    stream.addEventListener("close", cancel);
    stream.addEventListener("remoteCloseWrite", cancel);
    const load = () => service.load?.() ?? { active: 0, queued: 0 };
    let ahead = load().active + load().queued;
    let answered = false;
    let lastSent = performance.now();
    // Ticks at half the period so that the silence between two frames stays under keepAliveMs.
    const keepAlive = setInterval(() => {
      if (ac.signal.aborted || performance.now() - lastSent < keepAliveMs / 2) return;
      lastSent = performance.now();
      if (answered) return void out.write({ type: "alive" }).catch(() => {});
      const now = load();
      ahead = Math.max(0, Math.min(ahead, now.active + now.queued - 1));
      out.write({ type: "queued", position: ahead }).catch(() => {});
    }, keepAliveMs / 2);
    try {
      let ended = false;
      // Keyed by the member's pubkey: its prompt caches serve none of the others'.
      for await (const ev of service.infer(req, ac.signal, pubkey)) {
        if (ac.signal.aborted) break;
        answered = true;
        lastSent = performance.now();
        await out.write(ev);
        if (ev.type === "done" || ev.type === "error") {
          ended = true;
          break;
        }
      }
      if (!ended && !ac.signal.aborted) {
        throw new ServiceError("unavailable", "the generation ended without a result");
      }
      await out.flush();
    } catch (err) {
      if (!ac.signal.aborted) {
        const e = servingFailure(err);
        log.warn(`request from ${shortPeer(peerId)} failed: ${e.message}`);
        await out.write(errorEvent(e)).then(() => out.flush()).catch(() => {});
      }
    } finally {
      clearInterval(keepAlive);
      stream.removeEventListener("close", cancel);
      stream.removeEventListener("remoteCloseWrite", cancel);
    }
    if (ac.signal.aborted) {
      log.info(`request from ${shortPeer(peerId)} cancelled: the stream closed`);
      stream.abort(new Error("cancelled"));
    } else {
      await stream.close().catch(() => {});
    }
  }
}

export interface InferStreams {
  /** A spare stream to `peerId` if one is open (it is handed over, not shared). */
  take(peerId: string): Stream | undefined;
  /** A request to `target` ended: open a spare for the next one, in the background. */
  refill(target: { peerId: string; addrs: string[] }): void;
  close(): void;
}

/**
 * One spare `/grove/infer/1` stream per peer recently used. Opening a stream costs a multistream
 * round trip and a peer-store write on each side (~2 ms on loopback), all before the request can
 * leave; a spare pays that between requests. A spare unused for `spareMs` is dropped, and the
 * server drops one that brings no request in its own, longer, limit.
 */
export function createInferStreams(node: MeshNode, spareMs = SPARE_MS): InferStreams {
  const spares = new Map<string, { stream: Stream; timer: ReturnType<typeof setTimeout> }>();
  const opening = new Set<string>();
  let closed = false;

  const usable = (s: Stream) => s.status === "open" && s.writeStatus === "writable";
  function drop(peerId: string) {
    const spare = spares.get(peerId);
    if (!spare) return;
    spares.delete(peerId);
    clearTimeout(spare.timer);
    if (spare.stream.status === "open") spare.stream.abort(new Error("spare stream unused"));
  }

  return {
    take(peerId) {
      const spare = spares.get(peerId);
      if (!spare) return undefined;
      spares.delete(peerId);
      clearTimeout(spare.timer);
      return usable(spare.stream) ? spare.stream : undefined;
    },
    refill(target) {
      const { peerId } = target;
      if (closed || opening.has(peerId)) return;
      const have = spares.get(peerId);
      if (have && usable(have.stream)) return;
      drop(peerId);
      opening.add(peerId);
      const signal = AbortSignal.timeout(DEFAULTS.connectMs);
      node.dialProtocol(peerId, target.addrs, INFER_PROTOCOL, signal).then((stream) => {
        if (closed || spares.has(peerId)) return stream.abort(new Error("no spare needed"));
        const timer = setTimeout(() => drop(peerId), spareMs);
        spares.set(peerId, { stream, timer });
        stream.addEventListener("close", () => {
          if (spares.get(peerId)?.stream === stream) drop(peerId);
        });
      }, () => {/* the next request dials, and reports, on its own */}).finally(() => {
        opening.delete(peerId);
      });
    },
    close() {
      closed = true;
      for (const peerId of [...spares.keys()]) drop(peerId);
    },
  };
}

/**
 * The request as its frame, or ServiceError invalid_request when no serving node would take it:
 * the same checks as the server's (request-limits.ts), and the size limit.
 */
function encodeInferRequest(req: InferRequest): Uint8Array {
  parseInferRequest(req);
  const frame = encodeFrame(req);
  if (frame.length > MAX_REQUEST_FRAME_BYTES) {
    throw new ServiceError(
      "invalid_request",
      `The request is ${mib(frame.length)} as a mesh message; serving nodes take at most ` +
        `${mib(MAX_REQUEST_FRAME_BYTES)}. Shorten the prompt or the chat.`,
    );
  }
  return frame;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * One request on one peer. Yields the server's events; an `error` event ends it like `done`.
 * Aborting `signal` or leaving the loop resets the stream (the server stops generating). A peer
 * that cannot be reached, or whose stream dies or falls silent, throws ServiceError unavailable;
 * so does one whose answer breaks the limits (more tokens than `max_tokens`, frames too large).
 * A request no node would take is refused here with an `invalid_request` event, before any dial.
 * A spare stream that dies before any answer is replaced by a new one, once.
 */
export async function* callInfer(
  node: MeshNode,
  target: { peerId: string; addrs: string[] },
  req: InferRequest,
  signal: AbortSignal,
  timeouts: InferTimeouts = {},
): AsyncGenerator<InferEvent> {
  let frame: Uint8Array;
  try {
    frame = encodeInferRequest(req);
  } catch (err) {
    if (err instanceof ServiceError) return yield errorEvent(err);
    throw err;
  }
  const idleMs = timeouts.idleMs ?? DEFAULTS.idleMs;
  const streams = timeouts.streams;
  let stream = streams?.take(target.peerId);
  let spare = stream !== undefined;
  const seen = { answer: false };
  try {
    while (true) {
      stream ??= await open(node, target, signal, timeouts.connectMs ?? DEFAULTS.connectMs);
      if (!stream) return; // aborted while connecting
      const outcome = yield* exchange(
        stream,
        frame,
        answerLimits(req),
        signal,
        idleMs,
        spare,
        seen,
      );
      if (outcome !== "retry") return;
      stream = undefined;
      spare = false;
    }
  } finally {
    // The peer answered (the consumer may stop right after the last event, so check here): the
    // next request to it will want a stream at once.
    if (seen.answer && !signal.aborted) streams?.refill(target);
  }
}

async function open(
  node: MeshNode,
  target: { peerId: string; addrs: string[] },
  signal: AbortSignal,
  connectMs: number,
): Promise<Stream | undefined> {
  const limit = deadline(connectMs, signal);
  try {
    return await node.dialProtocol(target.peerId, target.addrs, INFER_PROTOCOL, limit.signal);
  } catch (err) {
    if (signal.aborted) return undefined;
    throw new ServiceError(
      "unavailable",
      `could not open a stream to serving node ${shortPeer(target.peerId)}: ${errorText(err)}`,
    );
  } finally {
    limit.clear();
  }
}

/** What an answer to `req` may hold: a serving member is not trusted to keep to the request. */
interface AnswerLimits {
  maxTokens: number;
  /** The names a tool call may have: the request's tools (none: no call may come). */
  toolNames: ReadonlySet<string>;
}

function answerLimits(req: InferRequest): AnswerLimits {
  const offered = req.tool_choice === "none" ? [] : req.tools ?? [];
  return {
    maxTokens: req.params.max_tokens ?? Infinity,
    toolNames: new Set(offered.map((t) => t.function.name)),
  };
}

/** The request on one stream; "retry" when a spare stream died before any answer. */
async function* exchange(
  stream: Stream,
  request: Uint8Array,
  limits: AnswerLimits,
  signal: AbortSignal,
  idleMs: number,
  spare: boolean,
  seen: { answer: boolean },
): AsyncGenerator<InferEvent, "done" | "retry"> {
  const onAbort = () => stream.abort(new Error("the client cancelled the request"));
  signal.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  let received = 0;
  let tokens = 0;
  let calls = 0;
  try {
    if (!stream.send(request)) await stream.onDrain();
    const frames = readStreamFrames(stream, idleMs, MAX_EVENT_FRAME_BYTES, MAX_ANSWER_BYTES);
    for await (const frame of frames) {
      received++;
      const ev = parseEvent(frame);
      if (ev === undefined) continue; // a keep-alive
      if (ev.type === "done" || ev.type === "error") finished = seen.answer = true;
      else if (ev.type === "token") {
        if (++tokens > limits.maxTokens) {
          throw new ServiceError(
            "unavailable",
            `it sent more tokens than max_tokens (${limits.maxTokens})`,
          );
        }
      } else if (!limits.toolNames.has(ev.name) || ev.index !== calls++ || calls > tokens) {
        // Each call is written by tokens that came before it, in order, of an offered tool.
        throw new ServiceError("unavailable", `it sent a tool call the request did not allow`);
      }
      yield ev;
      if (finished) return "done";
    }
    if (signal.aborted) return "done";
    if (spare && received === 0) return "retry";
    throw new ServiceError("unavailable", wentAway(received));
  } catch (err) {
    if (signal.aborted) return "done";
    if (spare && received === 0 && !(err instanceof ServiceError)) return "retry";
    if (err instanceof ServiceError) throw err;
    if (err instanceof FrameBudgetError) {
      throw new ServiceError("unavailable", `its answer ran past ${mib(MAX_ANSWER_BYTES)}`);
    }
    throw new ServiceError("unavailable", `${wentAway(received)} (${errorText(err)})`);
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (finished) void stream.close().catch(() => {});
    else if (stream.status === "open") stream.abort(new Error("the client left the request"));
  }
}

function wentAway(received: number): string {
  return received > 0 ? WENT_AWAY : "the serving node went away before answering";
}

/** An event, or undefined for a keep-alive (`queued`, `alive`). */
function parseEvent(frame: unknown): InferEvent | undefined {
  const ev = frame as Record<string, unknown> | null;
  const type = ev?.type;
  // What the web layer reads of each event, checked in O(1): a serving member is not trusted.
  if (type === "token") {
    if (typeof ev!.text === "string" && typeof ev!.id === "number") {
      return ev as unknown as InferEvent;
    }
  } else if (type === "done") {
    const usage = ev!.usage as Record<string, unknown> | undefined;
    if (
      typeof usage?.prompt_tokens === "number" && typeof usage.completion_tokens === "number" &&
      typeof ev!.timings === "object" && ev!.timings !== null
    ) return ev as unknown as InferEvent;
  } else if (type === "error") {
    if (typeof ev!.code === "string" && typeof ev!.message === "string") {
      return ev as unknown as InferEvent;
    }
  } else if (type === "tool_call") {
    if (isToolCall(ev!)) return ev as unknown as InferEvent;
  } else if (type === "queued" || type === "alive") return undefined;
  else {
    throw new ServiceError(
      "unavailable",
      `the serving node sent an unknown message (${String(type).slice(0, 40)})`,
    );
  }
  throw new ServiceError("unavailable", `the serving node sent a malformed ${type} message`);
}

/** A tool_call event as the web layer reads it: its arguments JSON text of an object. */
function isToolCall(ev: Record<string, unknown>): boolean {
  const { index, id, name, arguments: args } = ev;
  if (!Number.isSafeInteger(index) || (index as number) < 0) return false;
  if (typeof id !== "string" || id === "" || id.length > REQUEST_LIMITS.maxNameChars) return false;
  if (typeof name !== "string" || typeof args !== "string") return false;
  try {
    const parsed = JSON.parse(args);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}
