/**
 * llama.cpp's server routes that tools read beside the OpenAI API: POST /tokenize, POST
 * /detokenize and GET /props, answered with the tokenizer, template and context of the model.
 * A serving node answers its own model itself; any other model (and every model, on a client
 * node) is asked of a serving node of it over the mesh (the service's `tokenizer`), which
 * answers exactly as it would itself (mesh/local-tokenizer.ts).
 */
import {
  localTokenizerAnswer,
  ServiceError,
  type TokenizerAnswer,
  type TokenizerRequest,
} from "../mesh/mod.ts";
import type { InferenceService, LocalModelView } from "../mesh/mod.ts";
import { errorResponse, HttpError, invalidRequest, serviceHttpError } from "./http-error.ts";
import { OPENAI_DEFAULTS, readJsonBody } from "./validate.ts";

type Body = Record<string, unknown>;

/** A tokenizer request before the model is known. */
type Query =
  | Pick<Extract<TokenizerRequest, { tokenize: unknown }>, "tokenize">
  | Pick<Extract<TokenizerRequest, { detokenize: unknown }>, "detokenize">
  | Pick<Extract<TokenizerRequest, { props: unknown }>, "props">;

export interface LlamaCppDeps {
  service: InferenceService;
  /** The model this node serves itself; none on a client node. */
  local?: LocalModelView;
}

export function llamaCppRoutes(deps: LlamaCppDeps) {
  /**
   * The answer of the model `requested` names (or the first offered), here or over the mesh,
   * with the id of the model that answered.
   */
  async function answer(
    requested: unknown,
    query: Query,
    signal: AbortSignal,
  ): Promise<{ model: string; answer: TokenizerAnswer }> {
    if (requested !== undefined && requested !== null && typeof requested !== "string") {
      throw invalidRequest("model must be a string", "model");
    }
    const local = deps.local;
    const name = requested || undefined;
    if (local && (name === undefined || name === local.info.id || name === local.info.name)) {
      const model = local.info.id;
      return {
        model,
        answer: localTokenizerAnswer(local, { model, ...query } as TokenizerRequest),
      };
    }
    const model = name ?? (await deps.service.models().catch(() => []))[0]?.id;
    if (model === undefined || !deps.service.tokenizer) {
      throw new HttpError(
        501,
        `This node holds no tokenizer for ${model ? `\`${model}\`` : "any model"} and cannot ` +
          "ask the mesh for one: only a node serving a model answers /tokenize, /detokenize " +
          "and /props for it; ask a serving node.",
        "not_implemented_error",
        "not_implemented",
      );
    }
    const req = { model, ...query } as TokenizerRequest;
    return { model, answer: await deps.service.tokenizer(req, signal) };
  }

  async function tokenize(req: Request): Promise<Response> {
    try {
      const body = await readJsonBody(req);
      if (typeof body.content !== "string") {
        throw invalidRequest("content must be a string", "content");
      }
      const withPieces = flag(body, "with_pieces", false);
      const { answer: a } = await answer(body.model, {
        tokenize: {
          content: body.content,
          add_special: flag(body, "add_special", false),
          parse_special: flag(body, "parse_special", true),
          with_pieces: withPieces,
        },
      }, req.signal);
      if (a.kind !== "tokenize") throw mismatch(a, "tokenize");
      if (!withPieces) return Response.json({ tokens: a.tokens });
      return Response.json({ tokens: a.tokens.map((id, i) => ({ id, piece: a.pieces![i] })) });
    } catch (err) {
      return errorResponse(withParam(err, "content"));
    }
  }

  async function detokenize(req: Request): Promise<Response> {
    try {
      const body = await readJsonBody(req);
      const tokens = body.tokens;
      if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t) && t >= 0)) {
        throw invalidRequest("tokens must be an array of token ids", "tokens");
      }
      const { answer: a } = await answer(body.model, { detokenize: { tokens } }, req.signal);
      if (a.kind !== "detokenize") throw mismatch(a, "detokenize");
      return Response.json({ content: a.content });
    } catch (err) {
      // Ids outside the vocabulary are what the model's node refuses here.
      return errorResponse(withParam(err, "tokens"));
    }
  }

  async function props(req: Request): Promise<Response> {
    try {
      const requested = new URL(req.url).searchParams.get("model");
      const { model, answer: a } = await answer(requested, { props: {} }, req.signal);
      if (a.kind !== "props") throw mismatch(a, "props");
      const p = a.props;
      return Response.json({
        default_generation_settings: {
          n_ctx: p.n_ctx,
          // What this node's OpenAI routes use for a field left out (OpenAI's defaults).
          params: {
            n_predict: -1,
            temperature: OPENAI_DEFAULTS.temperature,
            top_k: OPENAI_DEFAULTS.top_k,
            top_p: OPENAI_DEFAULTS.top_p,
            min_p: OPENAI_DEFAULTS.min_p,
            repeat_last_n: 64,
            repeat_penalty: OPENAI_DEFAULTS.repeat_penalty,
            presence_penalty: OPENAI_DEFAULTS.presence_penalty,
            frequency_penalty: OPENAI_DEFAULTS.frequency_penalty,
            seed: 4294967295, // llama.cpp's "a random seed"
            stop: [],
          },
        },
        total_slots: p.total_slots,
        // The id members ask for; a node never publishes its file's path.
        model_path: model,
        chat_template: p.chat_template,
        bos_token: p.bos_token,
        eos_token: p.eos_token,
        modalities: { vision: false, audio: false },
        build_info: "grove",
      });
    } catch (err) {
      return errorResponse(err);
    }
  }

  return { tokenize, detokenize, props };
}

/** A service that answers another kind than asked is broken. */
function mismatch(a: TokenizerAnswer, kind: TokenizerAnswer["kind"]): Error {
  return new Error(`a ${kind} request was answered with ${a.kind}`);
}

/** A request the model's node refused: a 400 naming the field it was about. */
function withParam(err: unknown, param: string): unknown {
  if (!(err instanceof ServiceError)) return err;
  return err.code === "invalid_request"
    ? invalidRequest(err.message, param)
    : serviceHttpError(err);
}

function flag(body: Body, field: string, fallback: boolean): boolean {
  const v = body[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw invalidRequest(`${field} must be a boolean`, field);
  return v;
}
