/**
 * A status' targets by model, so a request looks at the targets of its own model only
 * (O(targets of that model)) instead of every target of the mesh: built once per status object
 * and kept beside it until the status is dropped.
 */
import type { MeshStatus, ServeTarget } from "./mesh-status-event.ts";

const byModel = new WeakMap<MeshStatus, Map<string, ServeTarget[]>>();

/** The targets whose `modelId` or `modelName` is `model`, in the status' order. */
export function targetsOfModel(status: MeshStatus | undefined, model: string): ServeTarget[] {
  if (status === undefined) return [];
  let index = byModel.get(status);
  if (index === undefined) {
    index = new Map();
    for (const t of status.serveTargets) {
      for (const key of new Set([t.modelId, t.modelName])) {
        if (key === "") continue;
        const list = index.get(key);
        if (list === undefined) index.set(key, [t]);
        else list.push(t);
      }
    }
    byModel.set(status, index);
  }
  return index.get(model) ?? [];
}
