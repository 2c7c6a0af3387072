/**
 * An InferenceService over one local Engine: chat template, tokenization and
 * the context check (prompt.ts; long prompts in a worker, prompt-encoder.ts),
 * then the scheduler (inference/scheduler.ts): up to `maxConcurrent`
 * generations decode together in batched steps, the rest wait in arrival order.
 */
import {
  type BatchEngine,
  createSampler,
  createScheduler,
  type Engine,
  type GeneratedToken,
  type GenerationResult,
  QueueFullError,
  type SamplerOptions,
  type ScheduledResult,
  type ScheduleOptions,
  sessionBatch,
  type StepOutput,
} from "../inference/mod.ts";
import { encodePrompt, type PromptModel } from "./prompt.ts";
import { createPromptEncoder } from "./prompt-encoder.ts";
import { compileConstraint } from "./constraint-grammar.ts";
import { FEATURE_FIELDS, missingFeatures } from "./request-features.ts";
import { createToolCallLayer } from "./tool-calls-stream.ts";
import { createLocalEmbedder } from "./local-embed.ts";
import { localTokenizerAnswer } from "./local-tokenizer.ts";
import { pickAutoModel } from "./auto-model.ts";
import {
  type DoneEvent,
  errorEvent,
  type InferenceService,
  type InferEvent,
  type InferParams,
  type InferRequest,
  type ModelInfo,
  type RequestFeature,
  ServiceError,
  type ServiceLoad,
  type TokenEvent,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "./service.ts";

/**
 * What the service reads of a model: its tokenizer, chat template and context. A split model's
 * coordinator has these from the GGUF header alone (its layers run through `batch`).
 */
export type ServedModel =
  & Pick<Engine, "config" | "tokenizer" | "metadata" | "ctxSize">
  & Partial<Pick<Engine, "createSession" | "embed">>;

export interface LocalServiceInit {
  engine: ServedModel;
  /** The id clients ask for (a catalog id such as `stories260K`); default: the model's name. */
  id?: string;
  name?: string;
  ownedBy?: string;
  /** Generations decoding at once (default 8); more wait in line. */
  maxConcurrent?: number;
  /** Requests that may wait in that line (default: the scheduler's 256); more answer "busy". */
  maxWaiting?: number;
  /**
   * The engine's batched face (inference/batch.ts), sharing its weights; without it the
   * engine's own sessions serve as slots, stepped one after another.
   */
  batch?: BatchEngine<StepOutput>;
  /** Prompts heavier than this (prompt-encoder.ts) are tokenized in a worker; default 4096. */
  inlinePromptWeight?: number;
  /**
   * Keep each requester's finished sequences in their slots' caches for its next prompts
   * (inference/prefix-cache.ts); default on where the batch engine can rewind (not a split).
   */
  promptReuse?: boolean;
}

/**
 * The cache key of this node's own requests (its HTTP clients'): apart from every member's,
 * whose keys are their pubkeys.
 */
export const OWN_REQUESTS = "this node";

export interface GenerationEnd {
  finishReason: GenerationResult["finishReason"];
  promptTokens: number;
  completionTokens: number;
}

export interface LocalServiceComponents {
  /** Told when each admitted generation ends, cancelled ones included (metrics, tests). */
  onGenerationEnd?: (end: GenerationEnd) => void;
}

/**
 * The model a serving node runs itself, as its HTTP routes read it: the tokenizer, the chat
 * template and the context (llama.cpp's /tokenize and /props, Ollama's /api/show).
 */
export interface LocalModelView {
  info: ModelInfo;
  model: ServedModel;
  /** Generations decoding at once: llama.cpp's `total_slots`. */
  slots: number;
}

export interface LocalService extends InferenceService {
  load(): ServiceLoad;
  view(): LocalModelView;
  /** The request features this service honours (its serve reports advertise them). */
  features(): RequestFeature[];
  tokenizer(req: TokenizerRequest, signal?: AbortSignal): Promise<TokenizerAnswer>;
  /** Ends the prompt worker, if one runs (it also ends on its own after a minute idle). */
  close(): void;
}

export function createLocalService(
  init: LocalServiceInit,
  components: LocalServiceComponents = {},
): LocalService {
  const { engine } = init;
  const info: ModelInfo = {
    id: init.id ?? engine.config.name,
    name: init.name ?? engine.config.name,
    contextLength: engine.ctxSize,
    ownedBy: init.ownedBy ?? "grove",
  };
  const maxConcurrent = init.maxConcurrent ?? 8;
  const scheduler = createScheduler({
    batch: init.batch ?? sessionBatch(engineWithSessions(engine), maxConcurrent),
    tokenizer: engine.tokenizer,
    maxConcurrent,
    maxWaiting: init.maxWaiting,
    promptReuse: init.promptReuse,
  });
  const features = featuresOf(init.batch);
  // Tool calls: the request's plan constrains the run, and its answer is read for calls.
  const toolCalls = createToolCallLayer({
    template: promptModel(engine).template,
    tokenizer: engine.tokenizer,
    constrains: features.includes("constraint"),
  });
  const prompts = createPromptEncoder({
    model: promptModel(engine),
    metadata: engine.metadata,
    inlineWeight: init.inlinePromptWeight,
  });
  // A model that samples on its last stage is split: no stage holds every layer to embed with.
  const embedder = createLocalEmbedder({
    model: init.batch?.samples ? { ...engine, embed: undefined } : engine,
    info,
    prompts,
  });
  if (embedder.supported) features.push("embeddings");
  // Every model has its tokenizer, a split's coordinator too (from the GGUF header).
  features.push("tokenize");
  const view = (): LocalModelView => ({ info, model: engine, slots: maxConcurrent });

  async function* infer(
    req: InferRequest,
    signal: AbortSignal,
    requester = OWN_REQUESTS,
  ): AsyncGenerator<InferEvent> {
    let tokens: number[];
    let options: ScheduleOptions;
    try {
      if (req.model !== info.id && req.model !== info.name) {
        throw new ServiceError(
          "model_not_found",
          `The model \`${req.model}\` does not exist on this node; it serves \`${info.id}\`.`,
        );
      }
      checkFeatures(req, features, info.id, init.batch?.samples === true);
      checkSampler(req.params, engine.tokenizer.vocabSize);
      options = { ...scheduleOptions(req.params, signal), cacheKey: requester };
      if (features.includes("resume")) Object.assign(options, resumeOptions(req, engine));
      tokens = await prompts.tokens(req);
    } catch (err) {
      if (err instanceof ServiceError) return yield errorEvent(err);
      throw err;
    }
    if (signal.aborted) return;
    let completionTokens = 0;
    let result: ScheduledResult | undefined;
    const run = scheduler.generate(tokens, options);
    let step;
    try {
      step = await run.next(); // the scheduler takes or refuses the request here
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      return yield errorEvent(new ServiceError("busy", err.message));
    }
    try {
      while (!step.done) {
        completionTokens++;
        yield tokenEvent(engine, step.value, req.params);
        step = await run.next();
      }
      result = step.value;
    } finally {
      // Reached also when the consumer stops iterating (client gone): the
      // scheduler frees the slot whichever way this ended.
      if (!result) await run.return(undefined as never);
      if (result?.admitted !== false) {
        components.onGenerationEnd?.({
          finishReason: result?.finishReason ?? "cancelled",
          promptTokens: tokens.length,
          completionTokens,
        });
      }
    }
    // The slot is already free: a consumer slow to take `done` holds up no one.
    if (result.finishReason !== "cancelled") yield doneEvent(result, result.queuedMs);
  }

  return {
    models: () => Promise.resolve([info]),
    infer: (req, signal, requester) => toolCalls(req, (r) => infer(r, signal, requester)),
    load: () => {
      const [g, e] = [scheduler.load(), embedder.load()];
      return { active: g.active + e.active, queued: g.queued + e.queued };
    },
    embed: embedder.embed,
    // Only its own model to choose from: "auto" is it, if it has what the request needs.
    chooseModel: (needs) => {
      const own = { id: info.id, contextLength: info.contextLength, features, local: true };
      try {
        return Promise.resolve(pickAutoModel([{ ...own, load: 0 }], needs));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    features: () => [...features],
    view,
    // What llama.cpp's /tokenize, /detokenize and /props read, for this node's peers too.
    tokenizer: (req) => {
      try {
        if (req.model !== info.id && req.model !== info.name) {
          throw new ServiceError(
            "model_not_found",
            `The model \`${req.model}\` does not exist on this node; it serves \`${info.id}\`.`,
          );
        }
        return Promise.resolve(localTokenizerAnswer(view(), req));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    close: () => prompts.close(),
  };
}

/**
 * What the engine can honour: an engine that samples itself (a split's last stage, through the
 * stage protocol's `open.sampler`) gets the penalties but neither a bias nor a grammar, which
 * the scheduler applies to the logits of the engines that give them.
 */
function featuresOf(batch: BatchEngine<StepOutput> | undefined): RequestFeature[] {
  if (batch?.samples) return ["penalties", "tools"];
  // Continuing an answer needs the sampler here, where its RNG state can be read and set.
  return ["constraint", "logit_bias", "penalties", "tools", "resume"];
}

/** A request needing what this node lacks is refused by name, never run without it. */
function checkFeatures(
  req: InferRequest,
  features: readonly RequestFeature[],
  model: string,
  split: boolean,
) {
  const missing = missingFeatures(req, features);
  if (missing.length === 0) return;
  const fields = missing.map((f) => FEATURE_FIELDS[f]).join(", ");
  const why = split
    ? " (a model split across nodes samples on its last stage, which takes no logit bias or " +
      "grammar yet)"
    : " yet";
  throw new ServiceError(
    "invalid_request",
    `${fields} ${missing.length === 1 ? "is" : "are"} not supported by this node's ` +
      `\`${model}\`${why}`,
  );
}

/** Without a batch the engine's own sessions are the slots: it must have them. */
function engineWithSessions(engine: ServedModel): Engine {
  if (!engine.createSession) throw new Error("a model without sessions needs a batch engine");
  return engine as Engine;
}

/** The prompt as the model reads it, tokenized here and now (prompt.ts). */
export function promptTokens(engine: ServedModel, req: InferRequest): number[] {
  return encodePrompt(promptModel(engine), req);
}

function promptModel(engine: ServedModel): PromptModel {
  const t = engine.metadata["tokenizer.chat_template"];
  return {
    tokenizer: engine.tokenizer,
    template: typeof t === "string" ? t : undefined,
    ctxSize: engine.ctxSize,
  };
}

/** Wire params → sampler options; a param left out keeps the sampler's (llama.cpp's) default. */
export function samplerOptions(p: InferParams): SamplerOptions {
  const options: SamplerOptions = {
    temperature: p.temperature,
    topP: p.top_p,
    topK: p.top_k,
    minP: p.min_p,
    repeatPenalty: p.repeat_penalty,
    presencePenalty: p.presence_penalty,
    frequencyPenalty: p.frequency_penalty,
    seed: p.seed,
    topLogprobs: p.logprobs ? p.top_logprobs ?? 0 : 0,
  };
  if (p.logit_bias !== undefined && Object.keys(p.logit_bias).length > 0) {
    options.logitBias = p.logit_bias;
  }
  // top_p 0 keeps only the best token (llama.cpp's top-p keeps at least one).
  if (p.top_p === 0) Object.assign(options, { topP: 1, topK: 1 });
  return options;
}

/** What the scheduler runs; a constraint's grammar compiled here (a ServiceError if it cannot). */
function scheduleOptions(p: InferParams, signal: AbortSignal): ScheduleOptions {
  const options: ScheduleOptions = {
    ...samplerOptions(p),
    maxTokens: p.max_tokens,
    stop: p.stop,
    signal,
  };
  if (p.constraint) options.constraint = compileConstraint(p.constraint);
  return options;
}

/** Bad sampling values from a peer are the request's fault, found before it takes a turn. */
function checkSampler(p: InferParams, vocabSize: number): void {
  try {
    createSampler({ ...samplerOptions(p), vocabSize });
  } catch (err) {
    throw new ServiceError("invalid_request", err instanceof Error ? err.message : String(err));
  }
}

/**
 * A continued answer (`resume`: docs/protocol.md#failover) and a continuable one (`resumable`):
 * the resumed tokens must be the model's.
 */
function resumeOptions(req: InferRequest, engine: ServedModel): Partial<ScheduleOptions> {
  const options: Partial<ScheduleOptions> = { reportRng: req.resumable === true };
  const resume = req.resume;
  if (!resume) return options;
  const vocab = engine.tokenizer.vocabSize;
  const bad = resume.tokens.find((id) => id >= vocab);
  if (bad !== undefined) {
    throw new ServiceError(
      "invalid_request",
      `request.resume.tokens holds ${bad}, outside the model's ${vocab} tokens`,
    );
  }
  options.resume = { tokens: resume.tokens, rngState: resume.rng };
  return options;
}

function tokenEvent(
  engine: ServedModel,
  t: GeneratedToken,
  params: InferParams,
): TokenEvent {
  const event: TokenEvent = { type: "token", text: t.text, id: t.id };
  if (t.rng) event.rng = t.rng;
  if (!params.logprobs) return event;
  event.token = piece(engine, t.id);
  event.logprob = t.logprob;
  if (t.topLogprobs) {
    event.top_logprobs = t.topLogprobs.map((a) => ({
      token: piece(engine, a.id),
      logprob: a.logprob,
    }));
  }
  return event;
}

/** One token's own text, spaces included (an incomplete UTF-8 byte reads as U+FFFD). */
function piece(engine: ServedModel, id: number): string {
  const d = engine.tokenizer.createDecoder();
  return d.push(id) + d.flush();
}

function doneEvent(r: ScheduledResult, queuedMs: number): DoneEvent {
  const event: DoneEvent = {
    type: "done",
    finish_reason: r.finishReason === "length" ? "length" : "stop",
    usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens },
    timings: {
      queued_ms: queuedMs,
      prompt_n: r.promptTokens,
      cached_n: r.cachedTokens,
      prompt_ms: r.prefillMs,
      prompt_per_second: r.prefillTokensPerSecond,
      predicted_n: r.completionTokens,
      predicted_ms: r.decodeMs,
      predicted_per_second: r.decodeTokensPerSecond,
    },
  };
  if (r.tail) event.tail = r.tail;
  return event;
}
