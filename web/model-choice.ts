/**
 * Which model a route asks for: the one named; the first one offered when the name is left out
 * (`""`); with `"auto"`, the served model that fits the request best (mesh/auto-model.ts), so
 * the answer's `model` names the model that really answered.
 */
import { AUTO_MODEL, type AutoNeeds, type InferenceService, ServiceError } from "../mesh/mod.ts";
import { serviceHttpError } from "./http-error.ts";

export async function resolveModel(
  service: InferenceService,
  model: string,
  needs: () => AutoNeeds,
): Promise<string> {
  if (model !== "" && model !== AUTO_MODEL) return model;
  if (model === AUTO_MODEL && service.chooseModel) return await service.chooseModel(needs());
  const models = await service.models();
  if (models.length === 0) {
    throw serviceHttpError(new ServiceError("unavailable", "no model is being served right now"));
  }
  return models[0].id;
}
