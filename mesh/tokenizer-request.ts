/**
 * Tokenizer requests on `/grove/infer/1` (docs/protocol.md#tokenizer-requests): llama.cpp's
 * /tokenize, /detokenize and /props for a client node, answered by a serving node of the model
 * (feature "tokenize"). A request is `{"model", "tokenize": {"content", "add_special"?,
 * "parse_special"?, "with_pieces"?}}`, `{"model", "detokenize": {"tokens"}}` or `{"model",
 * "props": {}}`; the answer is its frames (`tokenized` frames with the tokens in order,
 * `detokenized` frames with the text in order, or one `props` frame), then `done`.
 *
 * Both sides check: the serving node every request (a member is not trusted to have validated),
 * the client every answer (a serving member is not trusted to keep to the request: no more
 * tokens than the content can make, pieces matching them, frames of the kind asked for).
 */
import { clip, fail, isObject, isTokenId } from "./frame-checks.ts";
import {
  type ModelProps,
  ServiceError,
  type TokenizerAnswer,
  type TokenizerRequest,
  type TokenPiece,
} from "./service.ts";

export const TOKENIZER_LIMITS = {
  /**
   * The text of one tokenize request, as UTF-8: a serving node tokenizes it on its event loop at
   * ~1 µs a character, so 256 KiB (~64 Ki tokens of English, half the longest contexts) costs it
   * at most a few tenths of a second.
   */
  maxContentBytes: 256 * 1024,
  /** Token ids in one detokenize request: twice the longest contexts served. */
  maxTokens: 262_144,
  /** Serialized tokens, pieces or text per answer frame: half a frame (256 KiB), so any fits. */
  chunkBytes: 128 * 1024,
  /** One props frame's chat template, as UTF-8: real templates are a few KiB to ~20 KiB. */
  maxTemplateBytes: 192 * 1024,
  /** A whole answer as a client reads it: 256 KiB of byte tokens with their pieces fits. */
  maxAnswerBytes: 16 * 1024 * 1024,
} as const;

const KINDS = ["tokenize", "detokenize", "props"] as const;

/** Whether a request frame is a tokenizer request (a generation carries messages or a prompt). */
export function isTokenizerFrame(frame: unknown): boolean {
  return isObject(frame) && KINDS.some((k) => frame[k] !== undefined);
}

/** A frame as read off the wire → a tokenizer request, or ServiceError invalid_request. */
export function parseTokenizerRequest(frame: unknown): TokenizerRequest {
  if (!isObject(frame)) fail("the request is not a JSON object");
  const { model } = frame;
  if (typeof model !== "string" || model === "" || model.length > 512) {
    fail("request.model must be a string of 1 to 512 characters");
  }
  const kinds = KINDS.filter((k) => frame[k] !== undefined);
  if (kinds.length !== 1) {
    fail("a tokenizer request carries exactly one of tokenize, detokenize and props");
  }
  const kind = kinds[0];
  for (const key of Object.keys(frame)) {
    if (key !== "model" && key !== kind) fail(`request.${clip(key)} is not part of ${kind}`);
  }
  const args = frame[kind];
  if (!isObject(args)) fail(`request.${kind} is not an object`);
  const allowed = {
    tokenize: ["content", "add_special", "parse_special", "with_pieces"],
    detokenize: ["tokens"],
    props: [],
  }[kind] as string[];
  for (const key of Object.keys(args)) {
    if (!allowed.includes(key)) fail(`${kind}.${clip(key)} is not supported by this serving node`);
  }
  if (kind === "tokenize") {
    const { content } = args;
    if (typeof content !== "string") fail("tokenize.content must be a string");
    if (utf8Length(content) > TOKENIZER_LIMITS.maxContentBytes) {
      fail(
        `tokenize.content is over ${TOKENIZER_LIMITS.maxContentBytes / 1024} KiB as UTF-8; ` +
          "a serving node tokenizes at most that for a peer",
      );
    }
    for (const flag of ["add_special", "parse_special", "with_pieces"]) {
      if (args[flag] !== undefined && typeof args[flag] !== "boolean") {
        fail(`tokenize.${flag} must be a boolean`);
      }
    }
  }
  if (kind === "detokenize") {
    const { tokens } = args;
    const max = TOKENIZER_LIMITS.maxTokens;
    if (!Array.isArray(tokens) || tokens.length > max || !tokens.every(isTokenId)) {
      fail(`detokenize.tokens must be an array of at most ${max} token ids`);
    }
  }
  return frame as unknown as TokenizerRequest;
}

/**
 * An answer as the frames that carry it (without the closing `done`): tokens and text cut so each
 * frame stays within `chunkBytes` whatever the tokens are.
 */
export function tokenizerAnswerFrames(answer: TokenizerAnswer): Record<string, unknown>[] {
  if (answer.kind === "props") {
    if (utf8Length(answer.props.chat_template) > TOKENIZER_LIMITS.maxTemplateBytes) {
      throw new ServiceError("unavailable", "this model's chat template is too long to send");
    }
    return [{ type: "props", ...answer.props }];
  }
  const frames: Record<string, unknown>[] = [];
  if (answer.kind === "detokenize") {
    // Escapes take at most 6 bytes a UTF-16 unit; a cut never splits a surrogate pair.
    const step = Math.floor(TOKENIZER_LIMITS.chunkBytes / 6);
    const text = answer.content;
    for (let at = 0; at < text.length || frames.length === 0;) {
      let end = Math.min(text.length, at + step);
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
      frames.push({ type: "detokenized", content: text.slice(at, end) });
      at = end;
    }
    return frames;
  }
  const { tokens, pieces } = answer;
  let start = 0;
  let size = 0;
  const cut = (end: number) => {
    const frame: Record<string, unknown> = { type: "tokenized", tokens: tokens.slice(start, end) };
    if (pieces) frame.pieces = pieces.slice(start, end);
    frames.push(frame);
    [start, size] = [end, 0];
  };
  for (let i = 0; i < tokens.length; i++) {
    const cost = 12 + (pieces ? JSON.stringify(pieces[i]).length + 1 : 0);
    if (size + cost > TOKENIZER_LIMITS.chunkBytes && i > start) cut(i);
    size += cost;
  }
  if (start < tokens.length || frames.length === 0) cut(tokens.length);
  return frames;
}

/**
 * The answer to `req` from its frames as they arrive (keep-alives and `done` excluded), or
 * ServiceError unavailable when they break the request: the serving node is then at fault.
 */
export function tokenizerAnswerReader(req: TokenizerRequest) {
  const tokens: number[] = [];
  const pieces: TokenPiece[] = [];
  let content = "";
  let props: ModelProps | undefined;
  // A text of n bytes is at most n tokens, a space prefix per piece and BOS/EOS: 2n + 4 is loose.
  const maxTokens = "tokenize" in req ? 2 * utf8Length(req.tokenize.content) + 4 : 0;
  const withPieces = "tokenize" in req && req.tokenize.with_pieces === true;

  return {
    add(frame: Record<string, unknown>): void {
      if ("tokenize" in req && frame.type === "tokenized") {
        const ids = frame.tokens;
        if (!Array.isArray(ids) || !ids.every(isTokenId)) bad("tokens that are no token ids");
        if (tokens.length + ids.length > maxTokens) bad("more tokens than the text can make");
        if (withPieces) {
          const p = frame.pieces;
          if (!Array.isArray(p) || p.length !== ids.length || !p.every(isPiece)) {
            bad("pieces that do not match its tokens");
          }
          pieces.push(...p);
        } else if (frame.pieces !== undefined) bad("pieces nobody asked for");
        tokens.push(...ids);
      } else if ("detokenize" in req && frame.type === "detokenized") {
        if (typeof frame.content !== "string") bad("a text that is no string");
        content += frame.content;
      } else if ("props" in req && frame.type === "props" && props === undefined) {
        const { n_ctx, total_slots, chat_template, bos_token, eos_token } = frame;
        const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
        if (!count(n_ctx) || !count(total_slots)) bad("props without a context and slots");
        for (const s of [chat_template, bos_token, eos_token]) {
          if (typeof s !== "string") bad("props without its template and special tokens");
        }
        props = { n_ctx, total_slots, chat_template, bos_token, eos_token } as ModelProps;
      } else {
        bad(`a ${String(frame.type).slice(0, 40)} message`);
      }
    },
    /** The whole answer once `done` came. */
    answer(): TokenizerAnswer {
      if ("tokenize" in req) {
        return withPieces ? { kind: "tokenize", tokens, pieces } : { kind: "tokenize", tokens };
      }
      if ("detokenize" in req) return { kind: "detokenize", content };
      if (props === undefined) bad("no props");
      return { kind: "props", props };
    },
  };
}

function bad(what: string): never {
  throw new ServiceError(
    "unavailable",
    `the serving node answered the tokenizer request with ${what}`,
  );
}

function isPiece(p: unknown): boolean {
  if (typeof p === "string") return true;
  return Array.isArray(p) && p.length > 0 &&
    p.every((b) => Number.isInteger(b) && b >= 0 && b < 256);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (isHighSurrogate(c) && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair: one code point
      i++;
    } else n += 3;
  }
  return n;
}
