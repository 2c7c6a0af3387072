/**
 * POST /api/node/start's body (docs/http-api.md#runtime): checked whole before anything starts,
 * so a typo is a 400 naming the field, never a start that half-happens. Whether the model exists
 * is the start's own business: it is found (or not) in the background, and a missing one leaves
 * the node `failed` with the reason.
 */
import { invalidRequest } from "./http-error.ts";

export interface StartOptions {
  mode: "serve" | "client";
  /** Serve: a catalog id, hf://… or a local path, as --model takes. */
  modelId?: string;
  /** Bytes. */
  maxMemory?: number;
  gpu?: boolean;
}

const FIELDS = new Set(["mode", "modelId", "maxMemory", "gpu"]);

export function parseStartBody(body: Record<string, unknown>): StartOptions {
  for (const field of Object.keys(body)) {
    if (!FIELDS.has(field)) {
      throw invalidRequest(
        `unknown field ${JSON.stringify(field.slice(0, 64))}: a start takes mode, modelId, ` +
          "maxMemory and gpu",
        field.slice(0, 64),
      );
    }
  }
  const { mode, modelId, maxMemory, gpu } = body;
  if (mode !== "serve" && mode !== "client") {
    throw invalidRequest('mode is required: "serve" or "client"', "mode");
  }
  const options: StartOptions = { mode };
  if (modelId !== undefined) {
    if (typeof modelId !== "string" || modelId.trim() === "") {
      throw invalidRequest("modelId must be a non-empty string", "modelId");
    }
    if (mode === "client") {
      throw invalidRequest("modelId is for mode serve: a client node serves no model", "modelId");
    }
    options.modelId = modelId.trim();
  } else if (mode === "serve") {
    throw invalidRequest(
      "modelId is required to serve: a catalog id such as stories260K, hf://… or a path",
      "modelId",
    );
  }
  if (maxMemory !== undefined) options.maxMemory = sizeOf(maxMemory);
  if (gpu !== undefined) {
    if (typeof gpu !== "boolean") throw invalidRequest("gpu must be true or false", "gpu");
    options.gpu = gpu;
  }
  return options;
}

/** "4GiB", "512MiB", "900KB" or a byte count, as --max-memory takes it. */
function sizeOf(value: unknown): number {
  const bad = () =>
    invalidRequest(
      'maxMemory must be a size like "4GiB" or "512MiB", or a positive byte count',
      "maxMemory",
    );
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value <= 0) throw bad();
    return value;
  }
  if (typeof value !== "string") throw bad();
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$/i.exec(value);
  if (!m) throw bad();
  const power = " KMGT".indexOf(m[2].toUpperCase() || " ");
  const bytes = Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
  if (bytes <= 0) throw bad();
  return bytes;
}
