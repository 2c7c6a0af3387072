/**
 * A tokenizer request (llama.cpp's /tokenize, /detokenize, /props) answered by the node that holds
 * the model: its own tokenizer, the template it renders chats with and its context. The HTTP
 * routes of a serving node and a LocalService answering the mesh both use this, so a client node
 * gets exactly what the serving node would answer itself.
 */
import { CHATML_TEMPLATE, templateParses } from "../inference/text.ts";
import type { LocalModelView } from "./local-service.ts";
import { ServiceError } from "./service.ts";
import type { ModelProps, TokenizerAnswer, TokenizerRequest, TokenPiece } from "./service.ts";

export function localTokenizerAnswer(view: LocalModelView, req: TokenizerRequest): TokenizerAnswer {
  const { tokenizer } = view.model;
  if ("tokenize" in req) {
    const { content, add_special, parse_special, with_pieces } = req.tokenize;
    const tokens = tokenizer.encode(content, {
      addSpecial: add_special ?? false,
      parseSpecial: parse_special ?? true,
    });
    if (!with_pieces) return { kind: "tokenize", tokens };
    return { kind: "tokenize", tokens, pieces: tokens.map((id) => pieceOf(view, id)) };
  }
  if ("detokenize" in req) {
    const n = tokenizer.vocabSize;
    const bad = req.detokenize.tokens.find((t) => !(Number.isInteger(t) && t >= 0 && t < n));
    if (bad !== undefined) {
      throw new ServiceError(
        "invalid_request",
        `tokens must be token ids from 0 to ${n - 1}; got ${bad}`,
      );
    }
    return {
      kind: "detokenize",
      content: tokenizer.decode(req.detokenize.tokens, { special: true }),
    };
  }
  return { kind: "props", props: modelProps(view) };
}

/** What llama.cpp's /props says of the model itself (the HTTP route adds the settings). */
export function modelProps(view: LocalModelView): ModelProps {
  const { model } = view;
  const tok = model.tokenizer;
  const t = model.metadata["tokenizer.chat_template"];
  const template = typeof t === "string" ? t : undefined;
  return {
    n_ctx: model.ctxSize,
    total_slots: view.slots,
    // The template this node renders with: the model's own, or ChatML when it has none.
    chat_template: templateParses(template) ? template! : CHATML_TEMPLATE,
    bos_token: tok.bos === undefined ? "" : tok.tokenText(tok.bos),
    eos_token: tok.eos === undefined ? "" : tok.tokenText(tok.eos),
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** llama.cpp's piece: a string when the token's bytes are valid UTF-8, else the bytes. */
function pieceOf(view: LocalModelView, id: number): TokenPiece {
  const tok = view.model.tokenizer;
  // A control token's piece is its text, as llama.cpp renders special tokens here.
  const own = tok.tokenBytes(id);
  const bytes = own.length > 0 ? own : new TextEncoder().encode(tok.tokenText(id));
  try {
    return utf8.decode(bytes);
  } catch {
    return [...bytes];
  }
}
