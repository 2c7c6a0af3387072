/**
 * Tokenizer requests over `/grove/infer/1` (docs/protocol.md#tokenizer-requests), both ends, as
 * embed-protocol.ts does for embeddings. The serving side answers a request frame that carries
 * `tokenize`, `detokenize` or `props` (serveInfer hands it here): the answer's frames, then
 * `done`. The client side reads that answer within what the request allows
 * (tokenizer-request.ts `tokenizerAnswerReader`).
 */
import type { Stream } from "@libp2p/interface";
import { encodeFrame, type Logger, silentLogger } from "../protocol/mod.ts";
import type { OpenInferStream } from "./embed-protocol.ts";
import {
  type DoneEvent,
  type ErrorEvent,
  errorEvent,
  type InferenceService,
  ServiceError,
  serviceErrorOf,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "./service.ts";
import {
  deadline,
  errorText,
  FrameBudgetError,
  frameWriter,
  MAX_EVENT_FRAME_BYTES,
  readStreamFrames,
  shortPeer,
} from "./stream-frames.ts";
import {
  parseTokenizerRequest,
  TOKENIZER_LIMITS,
  tokenizerAnswerFrames,
  tokenizerAnswerReader,
} from "./tokenizer-request.ts";

/** Answers one tokenizer request frame on `stream` with `service`, then closes it. */
export async function answerTokenizerRequest(
  stream: Stream,
  frame: unknown,
  service: InferenceService,
  options: { peerId: string; log?: Logger },
): Promise<void> {
  const log = options.log ?? silentLogger;
  const out = frameWriter(stream);
  const ac = new AbortController();
  const cancel = () => ac.abort(new Error("the client closed the stream"));
  stream.addEventListener("close", cancel);
  stream.addEventListener("remoteCloseWrite", cancel);
  try {
    const req = parseTokenizerRequest(frame);
    if (!service.tokenizer) {
      throw new ServiceError("invalid_request", "this node answers no tokenizer requests");
    }
    const answer = await service.tokenizer(req, ac.signal);
    for (const f of tokenizerAnswerFrames(answer)) {
      if (ac.signal.aborted) break;
      await out.write(f);
    }
    if (!ac.signal.aborted) {
      await out.write(doneEvent(answer.kind === "tokenize" ? answer.tokens.length : 0));
      await out.flush();
    }
  } catch (err) {
    if (!ac.signal.aborted) {
      const e = err instanceof ServiceError
        ? err
        : new ServiceError("unavailable", `the serving node failed: ${errorText(err)}`);
      if (e.code !== "invalid_request" && e.code !== "model_not_found") {
        log.warn(`tokenizer request from ${shortPeer(options.peerId)} failed: ${e.message}`);
      }
      await out.write(errorEvent(e)).then(() => out.flush()).catch(() => {});
    }
  } finally {
    stream.removeEventListener("close", cancel);
    stream.removeEventListener("remoteCloseWrite", cancel);
  }
  if (ac.signal.aborted) stream.abort(new Error("cancelled"));
  else await stream.close().catch(() => {});
}

/**
 * One tokenizer request on one peer. Rejects with ServiceError: `invalid_request` before any dial
 * for a request no node would take; the peer's own error; `unavailable` when the peer cannot be
 * reached, goes silent or away, or answers outside what the request allows.
 */
export async function callTokenizer(
  open: OpenInferStream,
  req: TokenizerRequest,
  signal: AbortSignal,
  options: { connectMs?: number; idleMs?: number } = {},
): Promise<TokenizerAnswer> {
  parseTokenizerRequest(req);
  const frame = encodeFrame(req);
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
    const reader = tokenizerAnswerReader(req);
    const frames = readStreamFrames(
      stream,
      options.idleMs ?? 30_000,
      MAX_EVENT_FRAME_BYTES,
      TOKENIZER_LIMITS.maxAnswerBytes,
    );
    for await (const f of frames) {
      const ev = isObject(f) ? f : {};
      if (ev.type === "queued") continue;
      if (ev.type === "error") {
        if (typeof ev.code !== "string" || typeof ev.message !== "string") {
          throw new ServiceError("unavailable", "the serving node sent a malformed error");
        }
        throw serviceErrorOf(ev as unknown as ErrorEvent);
      }
      if (ev.type === "done") {
        finished = true;
        return reader.answer();
      }
      reader.add(ev);
    }
    throw new ServiceError("unavailable", "the serving node went away before the answer's end");
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    if (signal.aborted) throw new ServiceError("unavailable", "cancelled");
    if (err instanceof FrameBudgetError) {
      throw new ServiceError(
        "unavailable",
        `its answer ran past ${TOKENIZER_LIMITS.maxAnswerBytes} bytes`,
      );
    }
    throw new ServiceError("unavailable", `the serving node went away (${errorText(err)})`);
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (finished) void stream.close().catch(() => {});
    else if (stream.status === "open") stream.abort(new Error("the client left the request"));
  }
}

function doneEvent(promptTokens: number): DoneEvent {
  return {
    type: "done",
    finish_reason: "stop",
    usage: { prompt_tokens: promptTokens, completion_tokens: 0 },
    timings: {
      queued_ms: 0,
      prompt_n: promptTokens,
      prompt_ms: 0,
      prompt_per_second: 0,
      predicted_n: 0,
      predicted_ms: 0,
      predicted_per_second: 0,
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
