/**
 * Tokenizer requests over `/grove/infer/1` (docs/protocol.md#tokenizer-requests), both ends, as
 * embed-protocol.ts does for embeddings. The serving side answers a request frame that carries
 * `tokenize`, `detokenize` or `props` (serveInfer hands it here): the answer's frames, then
 * `done`. The client side reads that answer within what the request allows
 * (tokenizer-request.ts `tokenizerAnswerReader`).
 */
import type { Stream } from "@libp2p/interface";
import { encodeFrame, type Logger } from "../protocol/mod.ts";
import {
  answerEvent,
  answerOnePiece,
  callOnePiece,
  type CallOnePieceOptions,
  onePieceDone,
  type OpenInferStream,
} from "./one-piece-answer.ts";
import {
  type InferenceService,
  ServiceError,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "./service.ts";
import {
  parseTokenizerRequest,
  TOKENIZER_LIMITS,
  tokenizerAnswerFrames,
  tokenizerAnswerReader,
} from "./tokenizer-request.ts";

/** Answers one tokenizer request frame on `stream` with `service`, then closes it. */
export function answerTokenizerRequest(
  stream: Stream,
  frame: unknown,
  service: InferenceService,
  options: { peerId: string; log?: Logger; keepAliveMs?: number },
): Promise<void> {
  const quiet = ["invalid_request", "model_not_found"] as const;
  const warnAs = "tokenizer request from";
  return answerOnePiece(stream, { ...options, warnAs, quiet }, async (signal) => {
    const req = parseTokenizerRequest(frame);
    if (!service.tokenizer) {
      throw new ServiceError("invalid_request", "this node answers no tokenizer requests");
    }
    const answer = await service.tokenizer(req, signal);
    const n = answer.kind === "tokenize" ? answer.tokens.length : 0;
    return [...tokenizerAnswerFrames(answer), onePieceDone(n)];
  });
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
  options: CallOnePieceOptions = {},
): Promise<TokenizerAnswer> {
  parseTokenizerRequest(req);
  const frame = encodeFrame(req);
  const reader = tokenizerAnswerReader(req);
  const malformed = () =>
    new ServiceError("unavailable", "the serving node sent a malformed error");
  return await callOnePiece(open, frame, signal, options, {
    read: (f) => {
      const ev = answerEvent(f, malformed);
      if (ev === undefined) return undefined;
      if (ev.type === "done") return reader.answer();
      reader.add(ev);
      return undefined;
    },
    maxBytes: TOKENIZER_LIMITS.maxAnswerBytes,
    cutShort: "the serving node went away before the answer's end",
  });
}
