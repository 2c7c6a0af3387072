/**
 * The seam between the web layer and whatever runs a request: a local engine
 * (local-service.ts) or serving peers over libp2p (remote-service.ts). The shapes are the
 * `/grove/infer/1` messages of docs/protocol.md#inference, so the mesh can forward them verbatim.
 */
// inference/text.ts, not inference/mod.ts: prompt-worker.ts loads this file in a worker, which
// must not load (or type-check) the engines.
import type { ChatMessage } from "../inference/text.ts";
import type { AutoNeeds } from "./auto-model.ts";

export type { ChatMessage };

/** Sampling and stopping; anything left out takes the serving engine's defaults. */
export interface InferParams {
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  seed?: number;
  stop?: string[];
  logprobs?: boolean;
  top_logprobs?: number; // alternatives per token, when logprobs is on
  /** OpenAI's logit_bias: token id (as a string) → bias added to its logit (-100 bans it). */
  logit_bias?: Record<string, number>;
  /** The output must match this grammar (feature "constraint"). */
  constraint?: Constraint;
}

/**
 * A grammar the output must follow, enforced token by token (never by retrying): any JSON
 * object, JSON matching a schema, or a GBNF grammar as llama.cpp writes them.
 */
export type Constraint =
  | { type: "json_object" }
  | { type: "json_schema"; schema: unknown; strict?: boolean; name?: string }
  | { type: "gbnf"; grammar: string };

/** An OpenAI function tool, as chat completions take it (feature "tools"). */
export interface ToolSpec {
  type: "function";
  function: { name: string; description?: string; parameters?: unknown; strict?: boolean };
}

export type ToolChoice = "auto" | "none" | "required" | {
  type: "function";
  function: { name: string };
};

/**
 * Request features beyond the base a serving node may advertise in its serve reports
 * (docs/protocol.md); a client sends a request that needs one only to a node that has it.
 */
export const REQUEST_FEATURES = [
  "constraint",
  "tools",
  "logit_bias",
  "penalties",
  "embeddings",
  "tokenize",
  /** Continues another node's answer from its tokens so far (`resume`, `resumable`). */
  "resume",
] as const;
export type RequestFeature = typeof REQUEST_FEATURES[number];

/** Exactly one of `messages` (chat) and `prompt` (plain completion). */
export interface InferRequest {
  model: string;
  messages?: ChatMessage[];
  prompt?: string;
  params: InferParams;
  /** Chat only: the functions the model may call (feature "tools"). */
  tools?: ToolSpec[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  /**
   * Token events carry `rng`, the sampler's RNG state after each token, so the answer can go on
   * on another node if this one dies (feature "resume").
   */
  resumable?: boolean;
  /** Continue an answer another node began (feature "resume", docs/protocol.md#failover). */
  resume?: ResumeState;
}

/**
 * Where an answer another node began stands: its tokens so far (after the prompt, in order, the
 * ones that wrote tool calls too) and the sampler's RNG state after the last of them (a token
 * event's `rng`; needless when sampling is greedy). The continuing node reads the prompt, feeds
 * these tokens (sampling none), then samples on from `rng`.
 */
export interface ResumeState {
  tokens: number[];
  rng?: number[];
}

/** How an embedding pools its rows: the last position's (decoder LLMs' default) or the mean. */
export type EmbedPooling = "last" | "mean";

/**
 * Embeddings of the served model (feature "embeddings"; docs/protocol.md#embeddings): each
 * input a text (tokenized with the model's own tokenizer, BOS as the model asks) or token ids.
 */
export interface EmbedRequest {
  model: string;
  embed: {
    input: (string | number[])[];
    /** Left out: the pooling the model states (its GGUF's pooling_type), else `last`. */
    pooling?: EmbedPooling;
    /** Cut each input to the model's context instead of refusing it (Ollama's default). */
    truncate?: boolean;
  };
}

export interface EmbedResult {
  /** One vector per input, in order: the model's hidden size, Euclidean length 1. */
  data: Float32Array[];
  usage: { prompt_tokens: number };
}

/**
 * llama.cpp's /tokenize, /detokenize and /props for a model, answered by a node that holds its
 * tokenizer (feature "tokenize"; docs/protocol.md#tokenizer-requests).
 */
export type TokenizerRequest =
  | { model: string; tokenize: TokenizeArgs }
  | { model: string; detokenize: { tokens: number[] } }
  | { model: string; props: Record<string, never> };

export interface TokenizeArgs {
  content: string;
  /** BOS/EOS as the model asks (default false). */
  add_special?: boolean;
  /** Special tokens' texts read as those tokens (default true). */
  parse_special?: boolean;
  /** Each token's piece too. */
  with_pieces?: boolean;
}

/** A token's piece: its text when its bytes are valid UTF-8, else the bytes (as llama.cpp). */
export type TokenPiece = string | number[];

/** What the node holding a model says of it for /props. */
export interface ModelProps {
  n_ctx: number;
  total_slots: number;
  /** The template the node renders chats with (ChatML when the model has none). */
  chat_template: string;
  bos_token: string;
  eos_token: string;
}

export type TokenizerAnswer =
  | { kind: "tokenize"; tokens: number[]; pieces?: TokenPiece[] }
  | { kind: "detokenize"; content: string }
  | { kind: "props"; props: ModelProps };

export interface TopLogprob {
  token: string;
  logprob: number;
}

export interface TokenEvent {
  type: "token";
  /** Text this token completes; "" while a UTF-8 sequence or a possible stop string is held back. */
  text: string;
  /**
   * Reasoning this token completes, apart from the answer (gpt-oss's analysis channel,
   * mesh/tool-calls-stream.ts); its text is then "". Absent when there is none.
   */
  reasoning?: string;
  id: number;
  /** With `logprobs`: the token's own piece (not what was emitted), its logprob, alternatives. */
  token?: string;
  logprob?: number;
  top_logprobs?: TopLogprob[];
  /** With `resumable`: the sampler's RNG state after this token (4 uint32 words). */
  rng?: number[];
}

/** llama.cpp's server timing names, so existing dashboards read them. */
export interface InferTimings {
  queued_ms: number;
  prompt_n: number;
  /**
   * Of prompt_n, the tokens taken from the serving node's cache of this requester's earlier
   * prompts (prompt reuse), not prefilled; prompt_ms and prompt_per_second cover the rest.
   * Left out by nodes from before prompt reuse.
   */
  cached_n?: number;
  prompt_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_second: number;
}

export interface DoneEvent {
  type: "done";
  finish_reason: "stop" | "length" | "tool_calls";
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: InferTimings;
  /** Text held back to the end (a partial stop string that never completed); append it. */
  tail?: string;
  /** Reasoning held back to the end; append it to the reasoning. */
  tail_reasoning?: string;
}

export interface ErrorEvent {
  type: "error";
  code: ServiceErrorCode;
  message: string;
}

/**
 * A call of one of the request's tools, parsed from the model's output once the call is whole
 * (the tokens that wrote it came as `token` events with empty `text`).
 */
export interface ToolCallEvent {
  type: "tool_call";
  /** Order among this answer's calls, from 0. */
  index: number;
  id: string;
  name: string;
  /** The arguments as JSON text (an object). */
  arguments: string;
}

/** An answer: token and tool_call events, then one done or error event. */
export type InferEvent = TokenEvent | ToolCallEvent | DoneEvent | ErrorEvent;

export interface ModelInfo {
  id: string;
  name: string;
  contextLength?: number;
  ownedBy?: string;
}

/** How busy the service is: running generations and those waiting their turn. */
export interface ServiceLoad {
  active: number;
  queued: number;
}

/**
 * A request-level failure ends the stream with one `error` event (what the
 * wire carries). Throwing a ServiceError from `models()` or from the
 * iteration means the same; callers treat both alike. A stream that ends
 * without `done` or `error` was cancelled through the signal.
 */
export interface InferenceService {
  models(): Promise<ModelInfo[]>;
  /**
   * `requester`: the pubkey of the member whose request this is, as the mesh admitted its stream
   * (serveInfer); left out for this node's own requests. A serving node keeps each requester's
   * prompt caches apart (inference/prefix-cache.ts).
   */
  infer(req: InferRequest, signal: AbortSignal, requester?: string): AsyncIterable<InferEvent>;
  load?(): ServiceLoad;
  /** Embeddings; a service without it (or whose model has none) serves none. */
  embed?(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult>;
  /** `model: "auto"` (auto-model.ts): the served model that fits these needs best. */
  chooseModel?(needs: AutoNeeds): Promise<string>;
  /** Tokenizer requests; a service without it holds no tokenizer and reaches none. */
  tokenizer?(req: TokenizerRequest, signal: AbortSignal): Promise<TokenizerAnswer>;
}

export type ServiceErrorCode =
  | "mesh_denied"
  | "model_not_found"
  | "unavailable"
  | "context_length_exceeded"
  | "invalid_request"
  /** The node's wait queue is full: another node (or a later try) may take it. */
  | "busy";

export const SERVICE_ERROR_CODES: readonly ServiceErrorCode[] = [
  "mesh_denied",
  "model_not_found",
  "unavailable",
  "context_length_exceeded",
  "invalid_request",
  "busy",
];

export class ServiceError extends Error {
  override name = "ServiceError";
  constructor(public code: ServiceErrorCode, message: string) {
    super(message);
  }
}

/** The exact text a node the relay did not admit answers with (docs/http-api.md#errors). */
export const MESH_DENIED_MESSAGE = "Relay mesh denied this node — check your relay membership.";

export function errorEvent(err: ServiceError): ErrorEvent {
  return { type: "error", code: err.code, message: err.message };
}

/** An `error` event back to a ServiceError; an unknown code (a newer peer) reads as unavailable. */
export function serviceErrorOf(event: ErrorEvent): ServiceError {
  const code = SERVICE_ERROR_CODES.includes(event.code) ? event.code : "unavailable";
  return new ServiceError(code, event.message);
}
