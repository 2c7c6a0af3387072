/**
 * A request on `/grove/infer/1` answered in one piece (embeddings, tokenizer requests), both
 * ends. The serving side computes the whole answer, then writes its frames and `done`; while it
 * computes it may say `queued` every few seconds, so the client's idle limit waits on a long
 * request but not on a dead node. The client side reads the frames within the limits its request
 * sets and hands over the result only once it is whole. embed-protocol.ts and
 * tokenizer-protocol.ts say what the frames are.
 */
import type { Stream } from "@libp2p/interface";
import { type Logger, silentLogger } from "../protocol/mod.ts";
import { isObject } from "./frame-checks.ts";
import {
  type DoneEvent,
  type ErrorEvent,
  errorEvent,
  ServiceError,
  type ServiceErrorCode,
  serviceErrorOf,
} from "./service.ts";
import {
  DEAD_MS,
  deadline,
  errorText,
  FrameBudgetError,
  frameWriter,
  MAX_EVENT_FRAME_BYTES,
  readStreamFrames,
  shortPeer,
} from "./stream-frames.ts";

/** What a serving node answers for a request that failed (serveInfer's too). */
export function servingFailure(err: unknown): ServiceError {
  return err instanceof ServiceError
    ? err
    : new ServiceError("unavailable", `the serving node failed: ${errorText(err)}`);
}

export interface AnswerOnePieceOptions {
  peerId: string;
  log?: Logger;
  /** How often a request still being computed says so (`queued`); never without it. */
  keepAliveMs?: number;
  /** A failure's warning, before the peer: "embeddings for", "tokenizer request from". */
  warnAs: string;
  /** The request's own faults: answered as any error, but not worth a warning. */
  quiet: readonly ServiceErrorCode[];
}

/**
 * Answers one request on `stream`, then closes it: `compute` reads the request and returns the
 * answer's frames, `done` last. Once the client leaves, nothing more is written.
 */
export async function answerOnePiece(
  stream: Stream,
  options: AnswerOnePieceOptions,
  compute: (signal: AbortSignal) => Promise<Iterable<unknown>>,
): Promise<void> {
  const log = options.log ?? silentLogger;
  const out = frameWriter(stream);
  const ac = new AbortController();
  const cancel = () => ac.abort(new Error("the client closed the stream"));
  stream.addEventListener("close", cancel);
  stream.addEventListener("remoteCloseWrite", cancel);
  const keepAlive = options.keepAliveMs === undefined ? undefined : setInterval(() => {
    if (!ac.signal.aborted) out.write({ type: "queued", position: 0 }).catch(() => {});
  }, options.keepAliveMs);
  try {
    const frames = await compute(ac.signal);
    clearInterval(keepAlive);
    for (const f of frames) {
      if (ac.signal.aborted) break;
      await out.write(f);
    }
    if (!ac.signal.aborted) await out.flush();
  } catch (err) {
    if (!ac.signal.aborted) {
      const e = servingFailure(err);
      if (!options.quiet.includes(e.code)) {
        log.warn(`${options.warnAs} ${shortPeer(options.peerId)} failed: ${e.message}`);
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

/**
 * The `done` that closes an answer: `promptTokens` read in `promptMs`, nothing generated (the
 * fields a generation's `done` has, so the client's reader of `done` needs no second shape).
 */
export function onePieceDone(promptTokens: number, promptMs = 0): DoneEvent {
  return {
    type: "done",
    finish_reason: "stop",
    usage: { prompt_tokens: promptTokens, completion_tokens: 0 },
    timings: {
      queued_ms: 0,
      prompt_n: promptTokens,
      prompt_ms: promptMs,
      prompt_per_second: promptMs > 0 ? promptTokens / (promptMs / 1000) : 0,
      predicted_n: 0,
      predicted_ms: 0,
      predicted_per_second: 0,
    },
  };
}

/** Opens a `/grove/infer/1` stream to the serving node (role-peer.ts binds it to a peer). */
export type OpenInferStream = (signal: AbortSignal) => Promise<Stream>;

export interface CallOnePieceOptions {
  /** Dial, ticket exchange and stream open together (default 10 s). */
  connectMs?: number;
  /** Longest silence between two frames (default DEAD_MS: the server says `queued` meanwhile). */
  idleMs?: number;
}

export interface OnePieceReader<Res> {
  /** Each frame in turn: undefined until the answer is whole; throws ServiceError. */
  read: (frame: unknown) => Res | undefined;
  /** The most an answer may take, all frames together. */
  maxBytes: number;
  /** Why an answer that stops before it is whole failed. */
  cutShort: string;
}

/**
 * Sends `frame` (a request already checked) on a stream from `open` and reads its answer.
 * Rejects with ServiceError: the peer's own error, or `unavailable` when the peer cannot be
 * reached, goes silent or away, or answers outside what the request allows.
 */
export async function callOnePiece<Res>(
  open: OpenInferStream,
  frame: Uint8Array,
  signal: AbortSignal,
  options: CallOnePieceOptions,
  answer: OnePieceReader<Res>,
): Promise<Res> {
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
    const frames = readStreamFrames(
      stream,
      options.idleMs ?? DEAD_MS,
      MAX_EVENT_FRAME_BYTES,
      answer.maxBytes,
    );
    for await (const f of frames) {
      const result = answer.read(f);
      if (result !== undefined) {
        finished = true;
        return result;
      }
    }
    throw new ServiceError("unavailable", answer.cutShort);
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    if (signal.aborted) throw new ServiceError("unavailable", "cancelled");
    if (err instanceof FrameBudgetError) {
      throw new ServiceError("unavailable", `its answer ran past ${answer.maxBytes} bytes`);
    }
    throw new ServiceError("unavailable", `the serving node went away (${errorText(err)})`);
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (finished) void stream.close().catch(() => {});
    else if (stream.status === "open") stream.abort(new Error("the client left the request"));
  }
}

/**
 * An answer's frame as an object to read, or undefined for a keep-alive. The peer's own error is
 * thrown as its ServiceError; one without a code and message, as `malformed()`.
 */
export function answerEvent(
  frame: unknown,
  malformed: () => ServiceError,
): Record<string, unknown> | undefined {
  const ev = isObject(frame) ? frame : {};
  if (ev.type === "queued") return undefined;
  if (ev.type === "error") {
    if (typeof ev.code !== "string" || typeof ev.message !== "string") throw malformed();
    throw serviceErrorOf(ev as unknown as ErrorEvent);
  }
  return ev;
}
