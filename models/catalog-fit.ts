// The catalog as the dashboard offers it (docs/http-api.md#models): each model with what it needs
// in memory and whether that fits this machine. Where a copy of the model is on this machine
// (downloaded, in GROVE_MODEL_PATH or shipped) its GGUF header gives the planner's own estimate:
// weights as held, the KV cache at the default context and scratch (inference/model-shape.ts).
// Without a header only the file's size is known, and the need is taken as size × 1.2: weights
// load at about their file size; the f32 KV cache at the default context and the scratch come
// on top, and for them the fifth more is only a rough allowance. It
// undercounts long contexts and tiny models: stories260K is a 1.1 MiB file whose header-based
// estimate is 5.9 MiB, mostly scratch. A model installed or shipped always gets the header's.
import { modelConfigOf, modelShapeOf, openGguf, wholeModelBytes } from "../inference/mod.ts";
import { CATALOG, type CatalogEntry } from "./catalog.ts";
import { type InstalledOptions, listInstalledModels } from "./installed.ts";
import { findModelFile, locateModel } from "./resolve.ts";

export interface CatalogModel {
  id: string;
  name: string;
  size: number | null; // the file's bytes; null where nobody has measured it yet
  architecture: string;
  quantization: string;
  /** Memory to serve it whole at the default context; null where neither header nor size is known. */
  needsBytes: number | null;
  /** "header": the planner's estimate from the GGUF header; "size": size × 1.2. */
  needsFrom: "header" | "size" | null;
  /** needsBytes ≤ the memory available now; null where the need is unknown. */
  fits: boolean | null;
  /** On this machine whole (downloaded, in GROVE_MODEL_PATH, or shipped with Grove). */
  installed: boolean;
  /** Shipped with Grove (models/), so it runs without any download. */
  embedded: boolean;
}

export interface ModelCatalogView {
  machine: { memoryBytes: number; availableBytes: number };
  models: CatalogModel[];
}

export interface CatalogFitOptions extends InstalledOptions {
  /** Default: Deno.systemMemoryInfo(). */
  memory?: () => { total: number; available: number };
}

/** Without a header: weights at their file size plus a fifth for the KV cache and scratch. */
const SIZE_FACTOR = 1.2;

export async function modelCatalog(options: CatalogFitOptions = {}): Promise<ModelCatalogView> {
  const { total, available } = (options.memory ?? Deno.systemMemoryInfo)();
  const installed = (await listInstalledModels(options)).filter((m) => !m.partial);
  const models: CatalogModel[] = [];
  for (const entry of options.catalog ?? CATALOG) {
    const location = locateModel({ kind: "catalog", id: entry.id }, options);
    const file = installed.find((m) => m.id === entry.id)?.path ??
      await findModelFile(location);
    const fromHeader = file === undefined ? undefined : await headerNeeds(file);
    const size = entry.size ?? (file === undefined ? null : (await Deno.stat(file)).size);
    const needsBytes = fromHeader ?? (size === null ? null : Math.ceil(size * SIZE_FACTOR));
    models.push({
      ...facts(entry),
      size,
      needsBytes,
      needsFrom: fromHeader !== undefined ? "header" : needsBytes === null ? null : "size",
      fits: needsBytes === null ? null : needsBytes <= available,
      installed: file !== undefined,
      embedded: file !== undefined && file === location.embedded,
    });
  }
  return { machine: { memoryBytes: total, availableBytes: available }, models };
}

function facts(entry: CatalogEntry) {
  const { id, name, architecture, quantization } = entry;
  return { id, name, architecture, quantization };
}

/** The planner's estimate for the whole model, as `serve` computes it; undefined if unreadable. */
async function headerNeeds(path: string): Promise<number | undefined> {
  try {
    const file = await openGguf(path);
    const config = modelConfigOf(file);
    // The engines' default context (inference/cpu-engine.ts): the model's own, at most 4096.
    return wholeModelBytes(modelShapeOf(file, config, Math.min(config.contextLength, 4096)));
  } catch {
    return undefined; // an architecture the engines do not run: its size says what it can
  }
}
