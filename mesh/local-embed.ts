/**
 * Embeddings on a serving node's own model (feature "embeddings"): each input tokenized as a
 * prompt is (long texts in the prompt worker), checked against the context, then run through
 * the engine's `embed` (inference/embed.ts), one request at a time in arrival order. The
 * engine yields between chunks of positions, so generations keep stepping meanwhile; a line of
 * more than `maxWaiting` requests answers "busy".
 */
import { type Pooling, statedPooling } from "../inference/mod.ts";
import type { PromptEncoder } from "./prompt-encoder.ts";
import {
  type EmbedRequest,
  type EmbedResult,
  type ModelInfo,
  ServiceError,
  type ServiceLoad,
} from "./service.ts";
import type { ServedModel } from "./local-service.ts";

export interface LocalEmbedderInit {
  model: ServedModel;
  info: ModelInfo;
  prompts: PromptEncoder;
  /** Requests that may wait for their turn (default 64); more answer "busy". */
  maxWaiting?: number;
}

export interface LocalEmbedder {
  /** Whether the engine makes embeddings at all (a split's coordinator does not). */
  readonly supported: boolean;
  embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult>;
  load(): ServiceLoad;
}

export function createLocalEmbedder(init: LocalEmbedderInit): LocalEmbedder {
  const { model, info, prompts } = init;
  const maxWaiting = init.maxWaiting ?? 64;
  const defaultPooling: Pooling = statedPooling(model.metadata, model.config.arch) ?? "last";
  let running = false;
  const line: (() => void)[] = [];

  /** Waits for this request's turn; the returned function ends it. */
  async function turn(signal: AbortSignal): Promise<() => void> {
    if (running) {
      if (line.length >= maxWaiting) {
        throw new ServiceError(
          "busy",
          `this node is busy: ${line.length} embeddings requests are already waiting`,
        );
      }
      await new Promise<void>((resolve) => line.push(resolve));
    }
    running = true;
    const release = () => {
      const next = line.shift();
      if (next) next();
      else running = false;
    };
    if (signal.aborted) {
      release();
      throw cancelled();
    }
    return release;
  }

  async function embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    if (req.model !== info.id && req.model !== info.name) {
      throw new ServiceError(
        "model_not_found",
        `The model \`${req.model}\` does not exist on this node; it serves \`${info.id}\`.`,
      );
    }
    if (!model.embed) {
      throw new ServiceError(
        "invalid_request",
        `embeddings are not supported by this node's \`${info.id}\` (a model split across ` +
          "nodes has no stage that holds every layer)",
      );
    }
    const inputs: number[][] = [];
    for (const [i, input] of req.embed.input.entries()) {
      inputs.push(await tokensOf(input, i, req.embed.truncate === true));
    }
    const pooling = req.embed.pooling ?? defaultPooling;
    const release = await turn(signal);
    try {
      const data: Float32Array[] = [];
      for (const tokens of inputs) {
        if (signal.aborted) throw cancelled();
        data.push(await model.embed(tokens, pooling));
      }
      return { data, usage: { prompt_tokens: inputs.reduce((n, t) => n + t.length, 0) } };
    } finally {
      release();
    }
  }

  /** One input's tokens: a text as a prompt (BOS as the model asks), or ids from the vocabulary. */
  async function tokensOf(input: string | number[], i: number, truncate: boolean) {
    const { ctxSize, tokenizer } = model;
    const at = `input[${i}]`;
    if (typeof input !== "string") {
      const bad = input.find((id) => id >= tokenizer.vocabSize);
      if (bad !== undefined) {
        throw new ServiceError(
          "invalid_request",
          `${at} holds token id ${bad}, outside the vocabulary (0..${tokenizer.vocabSize - 1})`,
        );
      }
      if (input.length <= ctxSize) return input;
      if (truncate) return input.slice(0, ctxSize);
      throw tooLong(at, input.length);
    }
    try {
      return await prompts.tokens({ model: info.id, prompt: input, params: {} });
    } catch (err) {
      if (!(err instanceof ServiceError)) throw err;
      if (err.code === "context_length_exceeded" && truncate) {
        // A prefix of ctxSize tokens' worth of characters holds at least ctxSize tokens (no
        // token covers more than maxTokenChars), so the cut sees the text's own first tokens.
        const prefix = input.slice(0, ctxSize * tokenizer.maxTokenChars);
        return tokenizer.encode(prefix).slice(0, ctxSize);
      }
      throw new ServiceError(err.code, `${at}: ${err.message}`);
    }
  }

  function tooLong(at: string, tokens: number): ServiceError {
    return new ServiceError(
      "context_length_exceeded",
      `This model's maximum context length is ${model.ctxSize} tokens. However, ${at} has ` +
        `${tokens} tokens.`,
    );
  }

  return {
    supported: model.embed !== undefined,
    embed,
    load: () => ({ active: running ? 1 : 0, queued: line.length }),
  };
}

function cancelled(): ServiceError {
  return new ServiceError("unavailable", "the embeddings request was cancelled");
}
