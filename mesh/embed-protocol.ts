/**
 * Embeddings over `/grove/infer/1` (docs/protocol.md#embeddings), both ends. The serving side
 * answers a request frame that carries `embed` (serveInfer hands it here): one `embedding`
 * frame per input, in order, then `done`; while the vectors are computed it says `queued`
 * every few seconds, so the client's idle limit waits on a long batch but not on a dead node.
 * The client side reads that answer within the limits a member's answer must keep: one
 * base64 vector per frame, every input once and in order, every vector as wide as the first
 * and of length 1, and `done` only after the last.
 */
import type { Stream } from "@libp2p/interface";
import { encodeFrame, type Logger, silentLogger } from "../protocol/mod.ts";
import { decodeVector, EMBED_LIMITS, encodeVector, parseEmbedRequest } from "./embed-request.ts";
import {
  type EmbedRequest,
  type EmbedResult,
  type ErrorEvent,
  errorEvent,
  type InferenceService,
  ServiceError,
  serviceErrorOf,
} from "./service.ts";
import {
  deadline,
  errorText,
  FrameBudgetError,
  frameWriter,
  MAX_ANSWER_BYTES,
  MAX_EVENT_FRAME_BYTES,
  MAX_REQUEST_FRAME_BYTES,
  readStreamFrames,
  shortPeer,
} from "./stream-frames.ts";

export interface AnswerEmbedOptions {
  peerId: string;
  log?: Logger;
  /** How often a request still being computed says so (`queued`). */
  keepAliveMs: number;
}

/** Answers one embeddings request frame on `stream` with `service`, then closes it. */
export async function answerEmbed(
  stream: Stream,
  frame: unknown,
  service: InferenceService,
  options: AnswerEmbedOptions,
): Promise<void> {
  const log = options.log ?? silentLogger;
  const out = frameWriter(stream);
  const ac = new AbortController();
  const cancel = () => ac.abort(new Error("the client closed the stream"));
  stream.addEventListener("close", cancel);
  stream.addEventListener("remoteCloseWrite", cancel);
  const keepAlive = setInterval(() => {
    if (!ac.signal.aborted) out.write({ type: "queued", position: 0 }).catch(() => {});
  }, options.keepAliveMs);
  try {
    const req = parseEmbedRequest(frame);
    if (!service.embed) throw new ServiceError("invalid_request", "this node serves no embeddings");
    const started = performance.now();
    const result = await service.embed(req, ac.signal);
    clearInterval(keepAlive);
    if (ac.signal.aborted) return;
    for (const [index, vector] of result.data.entries()) {
      await out.write({ type: "embedding", index, embedding: encodeVector(vector) });
    }
    const ms = performance.now() - started;
    const n = result.usage.prompt_tokens;
    await out.write({
      type: "done",
      finish_reason: "stop",
      usage: { prompt_tokens: n, completion_tokens: 0 },
      timings: {
        queued_ms: 0,
        prompt_n: n,
        prompt_ms: ms,
        prompt_per_second: ms > 0 ? n / (ms / 1000) : 0,
        predicted_n: 0,
        predicted_ms: 0,
        predicted_per_second: 0,
      },
    });
    await out.flush();
  } catch (err) {
    if (!ac.signal.aborted) {
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("unavailable", `the serving node failed: ${errorText(err)}`);
      if (e.code !== "invalid_request" && e.code !== "context_length_exceeded") {
        log.warn(`embeddings for ${shortPeer(options.peerId)} failed: ${e.message}`);
      }
      await out.write(errorEvent(e)).then(() => out.flush()).catch(() => {});
    }
  } finally {
    clearInterval(keepAlive);
    stream.removeEventListener("close", cancel);
    stream.removeEventListener("remoteCloseWrite", cancel);
  }
  if (ac.signal.aborted) stream.abort(new Error("cancelled"));
  else await stream.close().catch(() => {});
}

export interface EmbedCallOptions {
  /** Dial, ticket exchange and stream open together (default 10 s). */
  connectMs?: number;
  /** Longest silence between two frames (default 30 s; the server says `queued` every 5 s). */
  idleMs?: number;
}

/** Opens a `/grove/infer/1` stream to the serving node (role-peer.ts binds it to a peer). */
export type OpenInferStream = (signal: AbortSignal) => Promise<Stream>;

/**
 * One embeddings request on one peer. Rejects with ServiceError: `invalid_request` before any
 * dial for a request no node would take; the peer's own error; `unavailable` when the peer
 * cannot be reached, goes silent or away, or answers outside the limits.
 */
export async function callEmbed(
  open: OpenInferStream,
  req: EmbedRequest,
  signal: AbortSignal,
  options: EmbedCallOptions = {},
): Promise<EmbedResult> {
  parseEmbedRequest(req);
  const frame = encodeFrame(req);
  if (frame.length > MAX_REQUEST_FRAME_BYTES) {
    throw new ServiceError(
      "invalid_request",
      `the embeddings request is ${frame.length} bytes as a mesh message; serving nodes take ` +
        `at most ${MAX_REQUEST_FRAME_BYTES}`,
    );
  }
  const limit = deadline(options.connectMs ?? 10_000, signal);
  let stream: Stream;
  try {
    stream = await open(limit.signal);
  } catch (err) {
    throw new ServiceError(
      "unavailable",
      signal.aborted ? "cancelled" : `could not open a stream: ${errorText(err)}`,
    );
  } finally {
    limit.clear();
  }
  const onAbort = () => stream.abort(new Error("the client cancelled the request"));
  signal.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  try {
    if (!stream.send(frame)) await stream.onDrain();
    const reader = answerReader(req.embed.input.length);
    const frames = readStreamFrames(
      stream,
      options.idleMs ?? 30_000,
      MAX_EVENT_FRAME_BYTES,
      MAX_ANSWER_BYTES,
    );
    for await (const f of frames) {
      const result = reader(f);
      if (result !== undefined) {
        finished = true;
        return result;
      }
    }
    throw new ServiceError("unavailable", "the serving node went away before the last vector");
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    if (signal.aborted) throw new ServiceError("unavailable", "cancelled");
    if (err instanceof FrameBudgetError) {
      throw new ServiceError("unavailable", `its answer ran past ${MAX_ANSWER_BYTES} bytes`);
    }
    throw new ServiceError("unavailable", `the serving node went away (${errorText(err)})`);
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (finished) void stream.close().catch(() => {});
    else if (stream.status === "open") stream.abort(new Error("the client left the request"));
  }
}

/**
 * Reads an answer to `inputs` inputs frame by frame: undefined until `done`, then the result.
 * Throws ServiceError: the peer's own error, or `unavailable` for an answer that breaks a rule
 * (a serving member is not trusted to keep to the request).
 */
export function answerReader(inputs: number): (frame: unknown) => EmbedResult | undefined {
  const data: Float32Array[] = [];
  const broken = (why: string) =>
    new ServiceError("unavailable", `the serving node sent a bad embeddings answer: ${why}`);
  return (frame) => {
    const ev = isObject(frame) ? frame : {};
    if (ev.type === "queued") return undefined;
    if (ev.type === "error") {
      if (typeof ev.code !== "string" || typeof ev.message !== "string") {
        throw broken("a malformed error");
      }
      throw serviceErrorOf(ev as unknown as ErrorEvent);
    }
    if (ev.type === "embedding") {
      if (ev.index !== data.length || data.length >= inputs) throw broken("a vector out of order");
      const v = typeof ev.embedding === "string" ? decodeVector(ev.embedding) : undefined;
      if (v === undefined || v.length > EMBED_LIMITS.maxDimensions) throw broken("no vector");
      if (data.length > 0 && v.length !== data[0].length) throw broken("vectors of two widths");
      let ss = 0;
      for (const x of v) ss += x * x;
      // NaN fails this too; 1e-3 is far above f32 rounding at any width.
      if (!(Math.abs(Math.sqrt(ss) - 1) < 1e-3)) throw broken("a vector not of length 1");
      data.push(v);
      return undefined;
    }
    if (ev.type === "done") {
      const usage = isObject(ev.usage) ? ev.usage : {};
      const tokens = usage.prompt_tokens;
      if (data.length !== inputs) throw broken(`${data.length} of ${inputs} vectors`);
      if (!Number.isSafeInteger(tokens) || (tokens as number) < inputs) {
        throw broken("no prompt token count");
      }
      return { data, usage: { prompt_tokens: tokens as number } };
    }
    throw broken(`an unexpected ${String(ev.type).slice(0, 40)} message`);
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
