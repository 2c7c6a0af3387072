// What kind of model reference a user typed (docs/http-api.md#models), in one line for the
// dashboard's model field: a catalog id, a Hugging Face file, a local file, or what is wrong.
import { resolve as resolvePath } from "node:path";
import { CATALOG } from "./catalog.ts";
import { runsArchitecture } from "./catalog-fit.ts";
import type { InstalledOptions } from "./installed.ts";
import {
  expandHome,
  findModelFile,
  formatModelRef,
  locateModel,
  ModelRefError,
  parseModelRef,
} from "./resolve.ts";

export interface ModelReferenceView {
  kind: "catalog" | "huggingface" | "path" | "invalid";
  /** The reference as start and pull take it; null when invalid. */
  id: string | null;
  detail: string;
  /** Whole on this machine: serving it needs no download. */
  installed: boolean;
}

export async function describeModelRef(
  ref: string,
  options: InstalledOptions = {},
): Promise<ModelReferenceView> {
  const catalog = options.catalog ?? CATALOG;
  let parsed;
  try {
    parsed = parseModelRef(ref, catalog);
  } catch (err) {
    if (!(err instanceof ModelRefError)) throw err;
    return { kind: "invalid", id: null, detail: err.message, installed: false };
  }
  if (parsed.kind === "path") return await describePath(parsed.path);
  const location = locateModel(parsed, options);
  const found = await findModelFile(location);
  if (parsed.kind === "hf") {
    const at = parsed.revision === "main" ? "" : `@${parsed.revision}`;
    return {
      kind: "huggingface",
      id: formatModelRef(parsed),
      detail: `Hugging Face: ${parsed.owner}/${parsed.repo} ${parsed.path}${at}`,
      installed: found !== undefined,
    };
  }
  const entry = location.entry!;
  const size = entry.size === null ? "size known once downloaded" : formatSize(entry.size);
  const shipped = found !== undefined && found === location.embedded ? ", shipped with Grove" : "";
  const runs = runsArchitecture(entry.architecture)
    ? ""
    : `; Grove can't run ${entry.architecture} yet`;
  return {
    kind: "catalog",
    id: entry.id,
    detail: `catalog: ${entry.name}, ${size}${shipped}${runs}`,
    installed: found !== undefined,
  };
}

async function describePath(typed: string): Promise<ModelReferenceView> {
  const absolute = resolvePath(expandHome(typed));
  const view = (state: string, installed: boolean): ModelReferenceView => ({
    kind: "path",
    id: typed,
    detail: `local file: ${absolute} (${state})`,
    installed,
  });
  try {
    const info = await Deno.stat(absolute);
    if (!info.isFile) return view("not a file", false);
    return view(`exists, ${formatSize(info.size)}`, true);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return view("not found", false);
    if (err instanceof Deno.errors.PermissionDenied) return view("not readable", false);
    throw err;
  }
}

/** 1.2 MiB, 640 MiB, 4.1 GiB: what a person reads at a glance. */
export function formatSize(bytes: number): string {
  const KIB = 1024, MIB = KIB * 1024, GIB = MIB * 1024;
  const one = (n: number) => n < 10 ? n.toFixed(1) : String(Math.round(n));
  if (bytes >= GIB) return `${one(bytes / GIB)} GiB`;
  if (bytes >= MIB) return `${one(bytes / MIB)} MiB`;
  if (bytes >= KIB) return `${one(bytes / KIB)} KiB`;
  return `${bytes} B`;
}
