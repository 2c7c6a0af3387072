/**
 * llama.cpp's server routes that tools read beside the OpenAI API: POST /tokenize, POST
 * /detokenize and GET /props, answered with the tokenizer, template and context of the model
 * this node serves itself. A client node holds no tokenizer: it says so (501) instead of
 * guessing; asking a serving node over the mesh is not done yet.
 */
import { CHATML_TEMPLATE, templateParses } from "../inference/text.ts";
import type { InferenceService, LocalModelView } from "../mesh/mod.ts";
import { errorResponse, HttpError, invalidRequest } from "./http-error.ts";
import { OPENAI_DEFAULTS, readJsonBody } from "./validate.ts";

type Body = Record<string, unknown>;

export interface LlamaCppDeps {
  service: InferenceService;
  /** The model this node serves itself; none on a client node. */
  local?: LocalModelView;
}

export function llamaCppRoutes(deps: LlamaCppDeps) {
  /** The local model when `requested` names it (or nothing); otherwise a 501 saying why. */
  async function localFor(requested: unknown): Promise<LocalModelView> {
    if (requested !== undefined && requested !== null && typeof requested !== "string") {
      throw invalidRequest("model must be a string", "model");
    }
    const local = deps.local;
    const name = requested || undefined;
    if (local && (name === undefined || name === local.info.id || name === local.info.name)) {
      return local;
    }
    const model = name ?? (await deps.service.models().catch(() => []))[0]?.id;
    throw new HttpError(
      501,
      `This node holds no tokenizer for ${model ? `\`${model}\`` : "any model"}: only a node ` +
        "serving a model answers /tokenize, /detokenize and /props for it; ask a serving node " +
        "(answering them over the mesh is not supported yet).",
      "not_implemented_error",
      "not_implemented",
    );
  }

  async function tokenize(req: Request): Promise<Response> {
    try {
      const body = await readJsonBody(req);
      const { tokenizer } = (await localFor(body.model)).model;
      if (typeof body.content !== "string") {
        throw invalidRequest("content must be a string", "content");
      }
      const tokens = tokenizer.encode(body.content, {
        addSpecial: flag(body, "add_special", false),
        parseSpecial: flag(body, "parse_special", true),
      });
      if (!flag(body, "with_pieces", false)) return Response.json({ tokens });
      const utf8 = new TextDecoder("utf-8", { fatal: true });
      return Response.json({
        tokens: tokens.map((id) => {
          // A control token's piece is its text, as llama.cpp renders special tokens here.
          const own = tokenizer.tokenBytes(id);
          const bytes = own.length > 0 ? own : new TextEncoder().encode(tokenizer.tokenText(id));
          // llama.cpp: a string when the piece is valid UTF-8, else its bytes.
          try {
            return { id, piece: utf8.decode(bytes) };
          } catch {
            return { id, piece: [...bytes] };
          }
        }),
      });
    } catch (err) {
      return errorResponse(err);
    }
  }

  async function detokenize(req: Request): Promise<Response> {
    try {
      const body = await readJsonBody(req);
      const { tokenizer } = (await localFor(body.model)).model;
      const tokens = body.tokens;
      const n = tokenizer.vocabSize;
      if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t) && t >= 0 && t < n)) {
        throw invalidRequest(`tokens must be an array of token ids from 0 to ${n - 1}`, "tokens");
      }
      return Response.json({ content: tokenizer.decode(tokens, { special: true }) });
    } catch (err) {
      return errorResponse(err);
    }
  }

  async function props(req: Request): Promise<Response> {
    try {
      const { info, model, slots } = await localFor(new URL(req.url).searchParams.get("model"));
      const tok = model.tokenizer;
      const t = model.metadata["tokenizer.chat_template"];
      const template = typeof t === "string" ? t : undefined;
      return Response.json({
        default_generation_settings: {
          n_ctx: model.ctxSize,
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
        total_slots: slots,
        // The id members ask for; a node never publishes its file's path.
        model_path: info.id,
        // The template this node renders with: the model's own, or ChatML when it has none.
        chat_template: templateParses(template) ? template : CHATML_TEMPLATE,
        bos_token: tok.bos === undefined ? "" : tok.tokenText(tok.bos),
        eos_token: tok.eos === undefined ? "" : tok.tokenText(tok.eos),
        modalities: { vision: false, audio: false },
        build_info: "grove",
      });
    } catch (err) {
      return errorResponse(err);
    }
  }

  return { tokenize, detokenize, props };
}

function flag(body: Body, field: string, fallback: boolean): boolean {
  const v = body[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw invalidRequest(`${field} must be a boolean`, field);
  return v;
}
