// The models on this machine (docs/http-api.md#node-api): the download store $GROVE_HOME/models,
// which the node may change, and GROVE_MODEL_PATH folders, which it only reads. Listing never
// hashes a file (a multi-GB model would stall the dashboard): the sha256 state is what the hash
// store already knows about the file as it is now.
import { basename, join, relative, resolve as resolvePath, sep } from "node:path";
import { GgmlType, type GgufFile, openGguf } from "../inference/mod.ts";
import { CATALOG, type CatalogEntry, catalogFileName } from "./catalog.ts";
import { type DownloadProgress, type HashStore, hashStorePath, readHashStore } from "./download.ts";
import {
  embeddedModelPath,
  expandHome,
  modelPathDirs,
  resolveModel,
  type ResolveOptions,
} from "./resolve.ts";
import { readSidecar, sidecarPath } from "./sparse-file.ts";
import { etaSeconds } from "./progress.ts";
import { type CatalogFitOptions, modelCatalog } from "./catalog-fit.ts";
import { describeModelRef } from "./reference-kind.ts";
import { rangeBytes } from "./byte-ranges.ts";

export interface InstalledModel {
  id: string; // the catalog id when the file is a catalog model's, else its file name
  file: string; // the file's name
  path: string; // absolute: the node API is its owner's, on loopback
  size: number; // the whole model's bytes
  /** A `.partial` (ranges fetched for a split stage) or `.part` (a download under way). */
  partial: boolean;
  bytesPresent: number; // what is on disk of `size`
  /**
   * "store": $GROVE_HOME/models, deletable; "model-path": a GROVE_MODEL_PATH folder;
   * "embedded": the copy shipped with Grove (models/), listed only when no other copy is here.
   */
  location: "store" | "model-path" | "embedded";
  architecture: string | null;
  quantization: string | null;
  sha256: { state: "verified" | "recorded" | "unknown"; value?: string };
}

export type InstalledOptions = Omit<ResolveOptions, "onProgress" | "offline">;

export class InstalledModelError extends Error {
  override name = "InstalledModelError";
  constructor(readonly code: "model_not_found" | "read_only_model", message: string) {
    super(message);
  }
}

export async function listInstalledModels(
  options: InstalledOptions = {},
): Promise<InstalledModel[]> {
  const catalog = options.catalog ?? CATALOG;
  const storeDir = storeDirOf(options);
  const store = await readHashStore(hashStorePath(storeDir));
  const found: InstalledModel[] = [];
  for (const dir of modelPathDirs(options.modelPath)) {
    if (dir === storeDir) continue;
    // resolveModel looks only at DIR/FILE in these folders, so no deeper either.
    for (const path of await modelFiles(dir, false)) {
      found.push(await describe(path, "model-path", catalog, store, storeDir));
    }
  }
  for (const path of await modelFiles(storeDir, true)) {
    found.push(await describe(path, "store", catalog, store, storeDir));
  }
  // The shipped default runs without a download, so the page offers it like any installed model.
  for (const entry of catalog) {
    const shipped = options.embedded === false ? undefined : embeddedModelPath(entry);
    if (shipped === undefined || found.some((m) => m.id === entry.id && !m.partial)) continue;
    found.push(await describe(shipped, "embedded", catalog, store, storeDir));
  }
  return found;
}

/**
 * Removes every file of model `id` in $GROVE_HOME/models (the whole file, a .partial and its
 * sidecar, a .part) and their hash-store records; a model only in GROVE_MODEL_PATH is refused.
 * The trust-on-first-use hash stays, so a later download must still match it.
 */
export async function deleteInstalledModel(
  id: string,
  options: InstalledOptions = {},
): Promise<InstalledModel[]> {
  const all = (await listInstalledModels(options)).filter((m) => m.id === id);
  const mine = all.filter((m) => m.location === "store");
  if (mine.length === 0) {
    if (all.length > 0) {
      throw new InstalledModelError(
        "read_only_model",
        all[0].location === "embedded"
          ? `model "${id}" ships with Grove (${all[0].path}) and cannot be removed`
          : `model "${id}" is in a GROVE_MODEL_PATH folder (${all[0].path}), which Grove only ` +
            `reads; remove the file there yourself`,
      );
    }
    throw new InstalledModelError("model_not_found", `model "${id}" is not installed`);
  }
  for (const model of mine) {
    await removeIfExists(model.path);
    if (model.path.endsWith(".partial")) await removeIfExists(sidecarPath(model.path));
  }
  const storePath = hashStorePath(storeDirOf(options));
  const store = await readHashStore(storePath);
  let changed = false;
  for (const model of mine) {
    if (store.verified[model.path]) {
      delete store.verified[model.path];
      changed = true;
    }
  }
  if (changed) await writeHashStore(storePath, store);
  return mine;
}

export interface PullProgress {
  status: "downloading";
  bytes: number;
  total: number | null;
  rate: number; // bytes per second of this transfer, resumed bytes not counted
  eta: number | null; // whole seconds left at that rate; null while the total or rate is unknown
}

export interface PullOptions extends InstalledOptions {
  onProgress?: (progress: PullProgress) => void;
  /** Fewest milliseconds between two progress reports (the last one always comes). */
  progressEveryMs?: number;
}

/** Downloads (or resumes, or finds) a catalog or hf:// model, checked; answers its entry. */
export async function pullModel(ref: string, options: PullOptions = {}): Promise<InstalledModel> {
  const every = options.progressEveryMs ?? 250;
  let started: number | undefined;
  let last = -Infinity;
  const onProgress = (p: DownloadProgress) => {
    const now = performance.now();
    started ??= now;
    if (!p.done && now - last < every) return;
    last = now;
    const seconds = (now - started) / 1000;
    const moved = p.received - p.resumedFrom;
    const rate = seconds > 0 ? Math.round(moved / seconds) : 0;
    const eta = etaSeconds(p.received, p.total, rate);
    options.onProgress?.({
      status: "downloading",
      bytes: p.received,
      total: p.total ?? null,
      rate,
      eta: eta === null ? null : Math.ceil(eta),
    });
  };
  // A pull puts the model in the store: the shipped copy of the default does not count.
  const resolved = await resolveModel(ref, { ...options, onProgress, embedded: false });
  if (resolved.ref.kind === "path") {
    throw new InstalledModelError(
      "model_not_found",
      `"${ref}" is a local path: only catalog ids and hf:// references are pulled`,
    );
  }
  const models = await listInstalledModels(options);
  const entry = models.find((m) => m.path === resolved.path);
  if (!entry) throw new Error(`pulled ${resolved.path} but it is not listed`);
  return entry;
}

async function describe(
  path: string,
  location: InstalledModel["location"],
  catalog: readonly CatalogEntry[],
  store: HashStore,
  storeDir: string,
): Promise<InstalledModel> {
  const file = basename(path);
  const partial = file.endsWith(".partial") || file.endsWith(".part");
  const wholeName = file.replace(/\.partial$|\.part$/, "");
  const entry = catalog.find((e) => catalogFileName(e) === wholeName);
  const info = await Deno.stat(path);
  let size = info.size;
  let bytesPresent = info.size;
  if (file.endsWith(".partial")) {
    const sidecar = await readSidecar(path);
    bytesPresent = sidecar ? rangeBytes(sidecar.ranges) : 0;
  } else if (partial) {
    size = entry?.size ?? info.size;
  }
  const header = await openGguf(path).catch(() => undefined);
  const seen = store.verified[path];
  const current = !partial && seen !== undefined && seen.size === info.size &&
    seen.mtimeMs === (info.mtime?.getTime() ?? 0);
  const sha256: InstalledModel["sha256"] = !current
    ? { state: "unknown" }
    : entry?.sha256 && entry.sha256 === seen.sha256
    ? { state: "verified", value: seen.sha256 }
    : { state: "recorded", value: seen.sha256 };
  return {
    id: entry?.id ?? modelId(path, location, storeDir, wholeName),
    file,
    path,
    size,
    partial,
    bytesPresent,
    location,
    architecture: architectureOf(header) ?? entry?.architecture ?? null,
    quantization: quantizationOf(header) ?? entry?.quantization ?? null,
    sha256,
  };
}

/** A store file outside the catalog under hf/OWNER/REPO/REVISION/PATH is that hf:// model. */
function modelId(path: string, location: string, storeDir: string, wholeName: string): string {
  if (location !== "store") return wholeName;
  const parts = relative(storeDir, path).split(sep);
  if (parts[0] !== "hf" || parts.length < 5) return wholeName;
  const [, owner, repo, revision, ...rest] = parts;
  rest[rest.length - 1] = wholeName;
  const at = revision === "main" ? "" : `@${revision}`;
  return `hf://${owner}/${repo}/${rest.join("/")}${at}`;
}

function architectureOf(header: GgufFile | undefined): string | null {
  const value = header?.metadata["general.architecture"];
  return typeof value === "string" ? value : null;
}

// llama.cpp's LLAMA_FTYPE names for general.file_type.
const FILE_TYPES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  7: "Q8_0",
  8: "Q5_0",
  9: "Q5_1",
  10: "Q2_K",
  11: "Q3_K_S",
  12: "Q3_K_M",
  13: "Q3_K_L",
  14: "Q4_K_S",
  15: "Q4_K_M",
  16: "Q5_K_S",
  17: "Q5_K_M",
  18: "Q6_K",
  19: "IQ2_XXS",
  20: "IQ2_XS",
  21: "Q2_K_S",
  22: "IQ3_XS",
  23: "IQ3_XXS",
  24: "IQ1_S",
  25: "IQ4_NL",
  26: "IQ3_S",
  27: "IQ3_M",
  28: "IQ2_S",
  29: "IQ2_M",
  30: "IQ4_XS",
  31: "IQ1_M",
  32: "BF16",
  36: "TQ1_0",
  37: "TQ2_0",
};

/** general.file_type when it names one, else the ggml type holding most of the weights' bytes. */
function quantizationOf(header: GgufFile | undefined): string | null {
  if (!header) return null;
  const fileType = header.metadata["general.file_type"];
  if (typeof fileType === "number" && FILE_TYPES[fileType]) return FILE_TYPES[fileType];
  const bytes = new Map<GgmlType, number>();
  for (const t of header.tensors) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.byteLength);
  let best: GgmlType | undefined;
  for (const [type, n] of bytes) if (best === undefined || n > bytes.get(best)!) best = type;
  return best === undefined ? null : GgmlType[best] ?? null;
}

async function modelFiles(dir: string, deep: boolean): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, e.name);
    if (e.isDirectory && deep) out.push(...await modelFiles(path, deep));
    else if (e.isFile && /\.gguf(\.partial|\.part)?$/i.test(e.name)) out.push(path);
  }
  return out;
}

function storeDirOf(options: InstalledOptions): string {
  // locateModel's own rule for the folder, without a model to locate.
  const fromEnv = Deno.env.get("GROVE_HOME");
  const home = options.groveHome ?? (fromEnv ? expandHome(fromEnv) : expandHome("~/.grove"));
  return resolvePath(home, "models");
}

async function writeHashStore(path: string, store: HashStore): Promise<void> {
  const tmp = `${path}.${Deno.pid}.tmp`; // rename: readers never see half a file
  await Deno.writeTextFile(tmp, JSON.stringify(store, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * The node API's model hooks over these functions: web/node-api.ts's NodeHooks (installed, pull,
 * delete) and web/models-api.ts's (the catalog with what fits, a reference's kind).
 */
export function installedModelHooks(options: CatalogFitOptions = {}) {
  return {
    installedModels: () => listInstalledModels(options),
    pullModel: (
      model: string,
      onProgress: (progress: PullProgress) => void,
      signal: AbortSignal,
    ) => pullModel(model, { ...options, onProgress, signal }),
    deleteModel: (id: string) => deleteInstalledModel(id, options),
    modelCatalog: () => modelCatalog(options),
    modelReference: (ref: string) => describeModelRef(ref, options),
  };
}
