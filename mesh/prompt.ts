/**
 * A request's prompt as the model reads it: the rendered chat (or the plain text), its tokens,
 * and the context check. Pure functions over the tokenizer and the chat template, so the same
 * code runs on the event loop for short prompts and in prompt-worker.ts for long ones, token for
 * token alike.
 *
 * A prompt far beyond the context is refused before it is tokenized: it has at least
 * ceil(length / tokenizer.maxTokenChars) tokens (inference/tokenizer/token-span.ts), an O(1)
 * bound, so a 4 MiB prompt to a 256-token context costs nothing.
 */
// inference/text.ts, not inference/mod.ts: prompt-worker.ts runs this file in a worker, which
// must not load the engines (WebGPU, WASM) it never uses.
import { renderToolChat, type Tokenizer } from "../inference/text.ts";
import { type InferRequest, ServiceError } from "./service.ts";

/** What the prompt functions need of a model; an Engine has all of it. */
export interface PromptModel {
  tokenizer: Tokenizer;
  /** The GGUF `tokenizer.chat_template`; undefined → ChatML. */
  template: string | undefined;
  ctxSize: number;
}

/** The text the model reads: a rendered chat, or the plain prompt. */
export function promptText(model: PromptModel, req: InferRequest): string {
  const tok = model.tokenizer;
  if (req.messages === undefined) {
    if (typeof req.prompt === "string") return req.prompt;
    throw new ServiceError("invalid_request", "the request has neither messages nor a prompt");
  }
  const bosToken = tok.bos === undefined ? "" : tok.tokenText(tok.bos);
  let text: string;
  try {
    // With tools, through the model's own tool format (inference/tool-calls/render.ts).
    text = renderToolChat({
      template: model.template,
      messages: req.messages,
      tools: req.tools,
      tool_choice: req.tool_choice,
      parallel_tool_calls: req.parallel_tool_calls,
      bosToken,
      eosToken: tok.eos === undefined ? "" : tok.tokenText(tok.eos),
      addGenerationPrompt: true,
    });
  } catch (err) {
    throw new ServiceError("invalid_request", err instanceof Error ? err.message : String(err));
  }
  // Templates print BOS themselves; the tokenizer adds it too, so keep one (as llama.cpp does).
  if (tok.addBos && bosToken !== "" && text.startsWith(bosToken)) {
    text = text.slice(bosToken.length);
  }
  return text;
}

/** Refuses, in O(1), a text that cannot fit the context whatever its tokens turn out to be. */
export function checkPromptLength(model: PromptModel, text: string, what: string): void {
  const atLeast = Math.ceil(text.length / model.tokenizer.maxTokenChars);
  if (atLeast < model.ctxSize) return;
  throw new ServiceError(
    "context_length_exceeded",
    `This model's maximum context length is ${model.ctxSize} tokens. However, your ${what} ` +
      `resulted in at least ${atLeast} tokens (${text.length} characters; no token of this ` +
      `model covers more than ${model.tokenizer.maxTokenChars}).`,
  );
}

/** The prompt's tokens, or a ServiceError: invalid_request, context_length_exceeded. */
export function encodePrompt(model: PromptModel, req: InferRequest): number[] {
  const what = req.messages ? "messages" : "prompt";
  const text = promptText(model, req);
  checkPromptLength(model, text, what);
  const tokens = model.tokenizer.encode(text);
  if (tokens.length === 0) throw new ServiceError("invalid_request", "the prompt is empty");
  if (tokens.length >= model.ctxSize) {
    throw new ServiceError(
      "context_length_exceeded",
      `This model's maximum context length is ${model.ctxSize} tokens. However, your ` +
        `${what} resulted in ${tokens.length} tokens.`,
    );
  }
  return tokens;
}

/**
 * A cheap stand-in for the work a prompt costs, read before rendering: its characters, plus a
 * template's share per message (rendering 100,000 short messages takes ~0.4 s on its own).
 */
export function promptWeight(req: InferRequest): number {
  if (req.messages === undefined) return typeof req.prompt === "string" ? req.prompt.length : 0;
  // The tools are rendered too, most as JSON of their schemas.
  let weight = req.tools ? JSON.stringify(req.tools).length : 0;
  for (const m of req.messages) {
    weight += 64;
    const c = m.content;
    if (typeof c === "string") weight += c.length;
    else if (Array.isArray(c)) {
      for (const part of c) weight += typeof part?.text === "string" ? part.text.length + 16 : 16;
    }
  }
  return weight;
}
