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
import { encodeFrame, type Logger } from "../protocol/mod.ts";
import { isObject } from "./frame-checks.ts";
import { decodeVector, EMBED_LIMITS, encodeVector, parseEmbedRequest } from "./embed-request.ts";
import {
  answerEvent,
  answerOnePiece,
  callOnePiece,
  type CallOnePieceOptions,
  onePieceDone,
  type OpenInferStream,
} from "./one-piece-answer.ts";
import {
  type EmbedRequest,
  type EmbedResult,
  type InferenceService,
  ServiceError,
} from "./service.ts";
import { MAX_ANSWER_BYTES, MAX_REQUEST_FRAME_BYTES } from "./stream-frames.ts";

export type { OpenInferStream } from "./one-piece-answer.ts";

export interface AnswerEmbedOptions {
  peerId: string;
  log?: Logger;
  /** How often a request still being computed says so (`queued`). */
  keepAliveMs: number;
}

/** Answers one embeddings request frame on `stream` with `service`, then closes it. */
export function answerEmbed(
  stream: Stream,
  frame: unknown,
  service: InferenceService,
  options: AnswerEmbedOptions,
): Promise<void> {
  const quiet = ["invalid_request", "context_length_exceeded"] as const;
  return answerOnePiece(stream, { ...options, warnAs: "embeddings for", quiet }, async (signal) => {
    const req = parseEmbedRequest(frame);
    if (!service.embed) throw new ServiceError("invalid_request", "this node serves no embeddings");
    const started = performance.now();
    return embedFrames(await service.embed(req, signal), started);
  });
}

/** The answer's frames, made as they are written: `done`'s time includes writing the vectors. */
function* embedFrames(result: EmbedResult, started: number): Generator<unknown> {
  for (const [index, vector] of result.data.entries()) {
    yield { type: "embedding", index, embedding: encodeVector(vector) };
  }
  yield onePieceDone(result.usage.prompt_tokens, performance.now() - started);
}

export type EmbedCallOptions = CallOnePieceOptions;

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
  return await callOnePiece(open, frame, signal, options, {
    read: answerReader(req.embed.input.length),
    maxBytes: MAX_ANSWER_BYTES,
    cutShort: "the serving node went away before the last vector",
  });
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
    const ev = answerEvent(frame, () => broken("a malformed error"));
    if (ev === undefined) return undefined;
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
