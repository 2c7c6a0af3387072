/**
 * `model: "auto"`: which served model answers a request that names none in particular. One pure
 * choice over candidates (each served model on each node that offers it, as this node knows
 * them: its own model, and the mesh status' entry targets), so the HTTP routes and tests agree:
 *
 * 1. only candidates with every feature the request needs (a constraint, tools, embeddings…);
 * 2. among them, those whose context holds the prompt's rough size (an unknown context counts
 *    as holding it: serve reports carry none), else the one with the largest context (its node
 *    then says exactly how far over the prompt is: a rough size never refuses a request alone);
 * 3. this node's own model first (no hop), then the least loaded, then the larger context, then
 *    the id, so equal candidates give the same answer every time.
 */
import { promptWeight } from "./prompt.ts";
import { FEATURE_FIELDS, requestFeatures } from "./request-features.ts";
import { type InferRequest, type RequestFeature, ServiceError } from "./service.ts";

/** The model name that asks for this choice. */
export const AUTO_MODEL = "auto";

export interface AutoCandidate {
  /** The model id the request will carry. */
  id: string;
  /** Its context in tokens, where known (a serving node's own model). */
  contextLength?: number;
  /** The request features the node that offers it advertises. */
  features: readonly string[];
  /** This node serves it itself. */
  local: boolean;
  /** Generations running and waiting there. */
  load: number;
}

/** What a request needs of a model. */
export interface AutoNeeds {
  features: readonly RequestFeature[];
  /** The prompt's rough size plus the tokens asked for. */
  tokens: number;
}

/** Characters per token for the rough size: English BPE averages ~4. */
const CHARS_PER_TOKEN = 4;

/** The needs of an inference request: its features, its prompt's rough size and max_tokens. */
export function inferNeeds(req: InferRequest): AutoNeeds {
  const prompt = Math.ceil(promptWeight(req) / CHARS_PER_TOKEN);
  return { features: requestFeatures(req), tokens: prompt + (req.params.max_tokens ?? 0) };
}

/** The needs of embeddings of `inputs`: the feature, and the longest input's rough size. */
export function embedNeeds(inputs: readonly (string | number[])[]): AutoNeeds {
  const longest = Math.max(
    0,
    ...inputs.map((x) => typeof x === "string" ? Math.ceil(x.length / CHARS_PER_TOKEN) : x.length),
  );
  return { features: ["embeddings"], tokens: longest };
}

/**
 * The model id that answers; throws ServiceError `unavailable` when no model is served and
 * `invalid_request` (naming the feature) when none has what the request needs.
 */
export function pickAutoModel(candidates: readonly AutoCandidate[], needs: AutoNeeds): string {
  if (candidates.length === 0) {
    throw new ServiceError("unavailable", "no model is being served right now");
  }
  const able = candidates.filter((c) => needs.features.every((f) => c.features.includes(f)));
  if (able.length === 0) {
    const fields = needs.features.filter((f) => !candidates.some((c) => c.features.includes(f)))
      .map((f) => FEATURE_FIELDS[f]);
    throw new ServiceError(
      "invalid_request",
      `model "auto" found no served model that supports ${
        (fields.length > 0 ? fields : needs.features.map((f) => FEATURE_FIELDS[f])).join(" with ")
      } (offered: ${[...new Set(candidates.map((c) => c.id))].join(", ")})`,
    );
  }
  const context = (c: AutoCandidate) => c.contextLength ?? Infinity;
  const fitting = able.filter((c) => needs.tokens <= context(c));
  const pool = fitting.length > 0
    ? fitting
    : able.filter((c) => context(c) === Math.max(...able.map(context)));
  const best = [...pool].sort((a, b) =>
    Number(b.local) - Number(a.local) ||
    a.load - b.load ||
    context(b) - context(a) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
  return best[0].id;
}
