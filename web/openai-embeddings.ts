/**
 * POST /v1/embeddings (OpenAI's shape) and the embeddings of Ollama's POST /api/embed: the
 * served model's pooled, normalised hidden states (mesh/local-embed.ts), through the mesh when
 * another node serves the model. The inputs go in mesh requests of at most EMBED_LIMITS.maxInputs
 * each, one after another, and come back in order.
 */
import {
  EMBED_LIMITS,
  embedNeeds,
  type EmbedPooling,
  type EmbedRequest,
  encodeVector,
  type InferenceService,
  ServiceError,
} from "../mesh/mod.ts";
import { errorResponse, invalidRequest } from "./http-error.ts";
import { resolveModel } from "./model-choice.ts";
import { readJsonBody } from "./validate.ts";

/** OpenAI's limit on inputs per request. */
export const MAX_EMBED_INPUTS = 2048;

type Input = string | number[];

export interface ParsedEmbeddings {
  model: string;
  input: Input[];
  encoding: "float" | "base64";
  dimensions?: number;
  pooling?: EmbedPooling;
}

/** OpenAI's body → what to embed; a 400 naming the field for anything it cannot honour. */
export function parseEmbeddingsBody(body: Record<string, unknown>): ParsedEmbeddings {
  const { model = "", encoding_format: encoding = "float", dimensions, pooling, user } = body;
  if (typeof model !== "string") throw invalidRequest("model must be a string", "model");
  const input = inputsOf(body.input, "input");
  if (encoding !== "float" && encoding !== "base64") {
    throw invalidRequest('encoding_format must be "float" or "base64"', "encoding_format");
  }
  if (dimensions !== undefined && !(Number.isSafeInteger(dimensions) && dimensions as number > 0)) {
    throw invalidRequest("dimensions must be a positive integer", "dimensions");
  }
  if (pooling !== undefined && pooling !== "last" && pooling !== "mean") {
    throw invalidRequest('pooling must be "last" or "mean"', "pooling");
  }
  if (user !== undefined && typeof user !== "string") {
    throw invalidRequest("user must be a string", "user");
  }
  return {
    model,
    input,
    encoding,
    dimensions: dimensions as number | undefined,
    pooling: pooling as EmbedPooling | undefined,
  };
}

/**
 * A string, an array of strings, one array of token ids or an array of them (OpenAI's four
 * forms), as a list of inputs: no empty string or array, at most 2048.
 */
export function inputsOf(value: unknown, param: string): Input[] {
  const want = `${param} must be a string, an array of strings, an array of token ids or an ` +
    `array of token id arrays, with 1 to ${MAX_EMBED_INPUTS} inputs, none empty`;
  const isIds = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 &&
    v.every((t) => Number.isSafeInteger(t) && t >= 0 && t < 2 ** 31);
  let list: unknown[];
  if (typeof value === "string") list = [value];
  else if (isIds(value)) list = [value];
  else if (Array.isArray(value)) list = value;
  else throw invalidRequest(want, param);
  if (list.length === 0 || list.length > MAX_EMBED_INPUTS) throw invalidRequest(want, param);
  list.forEach((item, i) => {
    const ok = (typeof item === "string" && item !== "") || isIds(item);
    if (!ok) throw invalidRequest(`${want} (${param}[${i}] is not)`, param);
  });
  return list as Input[];
}

export interface Embedded {
  model: string;
  data: Float32Array[];
  promptTokens: number;
}

/** Embeds `input` with `model` (or the one "auto" or "" picks), in mesh-sized batches. */
export async function embedInputs(
  service: InferenceService,
  model: string,
  input: Input[],
  options: { pooling?: EmbedPooling; truncate?: boolean; signal: AbortSignal },
): Promise<Embedded> {
  const chosen = await resolveModel(service, model, () => embedNeeds(input));
  if (!service.embed) {
    throw new ServiceError("invalid_request", "this node answers no embeddings");
  }
  const out: Embedded = { model: chosen, data: [], promptTokens: 0 };
  for (let start = 0; start < input.length; start += EMBED_LIMITS.maxInputs) {
    const req: EmbedRequest = {
      model: chosen,
      embed: { input: input.slice(start, start + EMBED_LIMITS.maxInputs) },
    };
    if (options.pooling) req.embed.pooling = options.pooling;
    if (options.truncate !== undefined) req.embed.truncate = options.truncate;
    const result = await service.embed(req, options.signal);
    out.data.push(...result.data);
    out.promptTokens += result.usage.prompt_tokens;
  }
  return out;
}

export function embeddingsRoute(service: InferenceService) {
  return async function embeddings(req: Request): Promise<Response> {
    try {
      const parsed = parseEmbeddingsBody(await readJsonBody(req));
      const done = await embedInputs(service, parsed.model, parsed.input, {
        pooling: parsed.pooling,
        signal: req.signal,
      });
      const width = done.data[0].length;
      if (parsed.dimensions !== undefined && parsed.dimensions !== width) {
        // A decoder's hidden state has no Matryoshka training: cut short, it means nothing.
        throw invalidRequest(
          `dimensions ${parsed.dimensions} cannot be honoured: \`${done.model}\` embeds in its ` +
            `hidden size, ${width} dimensions, which cannot be shortened meaningfully`,
          "dimensions",
        );
      }
      return Response.json({
        object: "list",
        data: done.data.map((v, index) => ({
          object: "embedding",
          index,
          embedding: parsed.encoding === "base64" ? encodeVector(v) : Array.from(v),
        })),
        model: done.model,
        usage: { prompt_tokens: done.promptTokens, total_tokens: done.promptTokens },
      });
    } catch (err) {
      return errorResponse(err);
    }
  };
}
