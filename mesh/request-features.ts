/**
 * Which request features (mesh/service.ts REQUEST_FEATURES) a request needs: a serving node
 * advertises those it supports in its serve reports, and a client sends a request only to a node
 * that has every one it needs (docs/protocol.md). One place decides, so the client's routing and
 * a serving node's own refusal agree.
 */
import type { InferRequest, RequestFeature } from "./service.ts";

export function requestFeatures(req: InferRequest): RequestFeature[] {
  const p = req.params;
  const out: RequestFeature[] = [];
  // A call forced by tool_choice (required, a named function) is grammar-constrained.
  const forced = req.tool_choice === "required" || typeof req.tool_choice === "object";
  const offersTools = (req.tools?.length ?? 0) > 0 && req.tool_choice !== "none";
  if (p.constraint !== undefined || (offersTools && forced)) out.push("constraint");
  if (offersTools) out.push("tools");
  if (p.logit_bias !== undefined && Object.keys(p.logit_bias).length > 0) out.push("logit_bias");
  // repeat_penalty is in the base; presence and frequency came later.
  if ((p.presence_penalty ?? 0) !== 0 || (p.frequency_penalty ?? 0) !== 0) out.push("penalties");
  if (req.resume !== undefined) out.push("resume");
  return out;
}

/** A feature as the HTTP APIs name it, for the message that refuses it. */
export const FEATURE_FIELDS: Readonly<Record<RequestFeature, string>> = {
  constraint: "response_format",
  tools: "tools",
  logit_bias: "logit_bias",
  penalties: "presence_penalty / frequency_penalty",
  embeddings: "embeddings",
  tokenize: "/tokenize, /detokenize and /props",
  resume: "a continued answer (resume)",
};

/** The features `req` needs that `supported` lacks. */
export function missingFeatures(
  req: InferRequest,
  supported: readonly string[] | undefined,
): RequestFeature[] {
  return requestFeatures(req).filter((f) => !(supported ?? []).includes(f));
}
