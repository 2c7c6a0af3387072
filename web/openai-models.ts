/** GET /v1/models and /v1/models/:id: every model the mesh offers now, in OpenAI's list shape. */
import type { InferenceService, ModelInfo } from "../mesh/mod.ts";
import { errorResponse, HttpError } from "./http-error.ts";

// Models have no creation time a client could use; a fixed one keeps the answer stable.
const CREATED = 0;

function openAiModel(m: ModelInfo) {
  return {
    id: m.id,
    object: "model",
    created: CREATED,
    owned_by: m.ownedBy ?? "grove",
    name: m.name,
    ...(m.contextLength === undefined ? {} : { context_length: m.contextLength }),
  };
}

export function modelsRoute(service: InferenceService) {
  return async function models(): Promise<Response> {
    try {
      const list = await service.models();
      return Response.json({ object: "list", data: list.map(openAiModel) });
    } catch (err) {
      return errorResponse(err);
    }
  };
}

export function modelRoute(service: InferenceService) {
  return async function model(id: string): Promise<Response> {
    try {
      const found = (await service.models()).find((m) => m.id === id);
      if (!found) {
        throw new HttpError(
          404,
          `The model \`${id}\` does not exist or is not offered by the mesh right now.`,
          "invalid_request_error",
          "model_not_found",
        );
      }
      return Response.json(openAiModel(found));
    } catch (err) {
      return errorResponse(err);
    }
  };
}
