/**
 * The catalog with what fits this machine, and what kind of model reference was typed
 * (docs/http-api.md#models): GET /api/models/catalog and GET /api/models/reference?ref=X, for the
 * dashboard's model field and models panel. The answers come from hooks the node's starter
 * injects (models/installed.ts installedModelHooks): web reads no model files itself.
 */
import { errorResponse, invalidRequest } from "./http-error.ts";
import { notProvided } from "./not-provided.ts";

export interface CatalogModelView {
  id: string;
  name: string;
  size: number | null;
  architecture: string;
  quantization: string;
  needsBytes: number | null;
  /** At the model's own context length, which a node takes where memory allows. */
  ownContextBytes: number | null;
  fits: boolean | null;
  installed: boolean;
  /** Grove's engines run its architecture; false: listed for what it needs, not offered. */
  runs: boolean;
}

export interface ModelCatalogAnswer {
  machine: { memoryBytes: number };
  models: CatalogModelView[];
}

export interface ModelReferenceAnswer {
  kind: "catalog" | "huggingface" | "path" | "invalid";
  id: string | null;
  detail: string;
  installed: boolean;
}

export interface ModelsHooks {
  modelCatalog?(): Promise<ModelCatalogAnswer>;
  modelReference?(ref: string): Promise<ModelReferenceAnswer>;
}

/** A reference longer than this is no model anyone typed (hf:// paths included). */
const MAX_REF = 2048;

export function createModelsApi(hooks: ModelsHooks) {
  async function catalog(): Promise<Response> {
    if (!hooks.modelCatalog) throw notProvided("the model catalog", "modelCatalog");
    return Response.json(await hooks.modelCatalog());
  }

  async function reference(req: Request): Promise<Response> {
    if (!hooks.modelReference) throw notProvided("describing model references", "modelReference");
    const ref = new URL(req.url).searchParams.get("ref");
    if (ref === null) {
      throw invalidRequest("ref is required: a catalog id, hf://… or a local path", "ref");
    }
    if (ref.length > MAX_REF) {
      throw invalidRequest(`ref is over ${MAX_REF} characters`, "ref");
    }
    return Response.json(await hooks.modelReference(ref));
  }

  const guard = (handler: (req: Request) => Promise<Response>) => async (req: Request) => {
    try {
      return await handler(req);
    } catch (err) {
      return errorResponse(err);
    }
  };
  return { catalog: guard(catalog), reference: guard(reference) };
}
