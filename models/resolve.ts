// Model references (docs/http-api.md#model-references) and where their files come from:
// GROVE_MODEL_PATH folders, then $GROVE_HOME/models, then the copy shipped in this folder (the
// default model only), then a verified download into $GROVE_HOME/models.
import { basename, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CATALOG,
  type CatalogEntry,
  catalogFileName,
  catalogIds,
  findCatalogEntry,
} from "./catalog.ts";
import {
  checkModelFile,
  DownloadError,
  downloadFile,
  type DownloadProgress,
  type ExpectedFile,
  hashStorePath,
  readHashStore,
  recordModelFile,
} from "./download.ts";
import { createProgressReporter } from "./progress.ts";

export type ModelRef =
  | { kind: "catalog"; id: string }
  | { kind: "hf"; owner: string; repo: string; path: string; revision: string }
  | { kind: "path"; path: string };

export type HfModelRef = Extract<ModelRef, { kind: "hf" }>;

export class ModelRefError extends Error {
  override name = "ModelRefError";
}

export class ModelResolveError extends Error {
  override name = "ModelResolveError";
}

const HF_PREFIX = "hf://";

export function parseModelRef(ref: string, catalog: readonly CatalogEntry[] = CATALOG): ModelRef {
  const text = ref.trim();
  if (text === "") throw new ModelRefError(`empty model reference; ${knownIds(catalog)}`);
  if (text.startsWith(HF_PREFIX)) return parseHfRef(text);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new ModelRefError(
      `unsupported model reference "${ref}": use hf://OWNER/REPO/FILE.gguf[@REVISION], ` +
        `a local path, or a catalog id (${catalogIds(catalog).join(", ")})`,
    );
  }
  const looksLikePath = text.includes("/") || text.includes("\\") || text.startsWith(".") ||
    text.startsWith("~") || text.toLowerCase().endsWith(".gguf");
  if (looksLikePath) return { kind: "path", path: text };
  const entry = findCatalogEntry(text, catalog);
  if (!entry) throw new ModelRefError(`unknown model "${ref}"; ${knownIds(catalog)}`);
  return { kind: "catalog", id: entry.id };
}

function knownIds(catalog: readonly CatalogEntry[]): string {
  return `catalog ids: ${catalogIds(catalog).join(", ")} ` +
    `(or hf://OWNER/REPO/FILE.gguf[@REVISION], or a path to a .gguf file)`;
}

function parseHfRef(text: string): HfModelRef {
  const bad = (why: string) =>
    new ModelRefError(
      `bad Hugging Face reference "${text}": ${why}; ` +
        `expected hf://OWNER/REPO/PATH.gguf or hf://OWNER/REPO/PATH.gguf@REVISION`,
    );
  const body = text.slice(HF_PREFIX.length);
  const at = body.lastIndexOf("@");
  const location = at === -1 ? body : body.slice(0, at);
  const revision = at === -1 ? "main" : body.slice(at + 1);
  const [owner, repo, ...rest] = location.split("/");
  const path = rest.join("/");
  if (!owner || !repo || rest.length === 0) throw bad("it needs an owner, a repo and a file path");
  if (!path.toLowerCase().endsWith(".gguf")) throw bad("the file must be a .gguf");
  if (revision === "") throw bad("empty revision after @");
  // These segments become folders under $GROVE_HOME/models: no way out of it.
  for (const segment of [owner, repo, ...rest, ...revision.split("/")]) {
    if (segment === "" || segment === "." || segment === "..") {
      throw bad(`bad segment "${segment}"`);
    }
  }
  return { kind: "hf", owner, repo, path, revision };
}

export function formatModelRef(ref: ModelRef): string {
  if (ref.kind === "catalog") return ref.id;
  if (ref.kind === "path") return ref.path;
  const revision = ref.revision === "main" ? "" : `@${ref.revision}`;
  return `${HF_PREFIX}${ref.owner}/${ref.repo}/${ref.path}${revision}`;
}

export function hfUrl(ref: HfModelRef, endpoint = "https://huggingface.co"): string {
  const path = ref.path.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${encodeURIComponent(ref.owner)}/` +
    `${encodeURIComponent(ref.repo)}/resolve/${encodeURIComponent(ref.revision)}/${path}`;
}

export interface ResolveOptions {
  groveHome?: string; // default: GROVE_HOME, else ~/.grove
  modelPath?: string | string[]; // default: GROVE_MODEL_PATH (colon-separated)
  offline?: boolean; // never download
  fetch?: typeof fetch;
  onProgress?: (progress: DownloadProgress) => void; // default: a progress bar on stderr
  signal?: AbortSignal;
  catalog?: readonly CatalogEntry[];
  hfEndpoint?: string; // default: HF_ENDPOINT, else https://huggingface.co
  /** Use a catalog model's shipped copy when no other is found (default true; a pull says no). */
  embedded?: boolean;
}

export interface ResolvedModel {
  path: string; // absolute path of the .gguf file
  ref: ModelRef;
  entry?: CatalogEntry;
  downloaded: boolean;
}

export async function resolveModel(
  ref: string | ModelRef,
  options: ResolveOptions = {},
): Promise<ResolvedModel> {
  const catalog = options.catalog ?? CATALOG;
  const parsed = typeof ref === "string" ? parseModelRef(ref, catalog) : ref;
  if (parsed.kind === "path") {
    return { path: await localModelFile(parsed.path), ref: parsed, downloaded: false };
  }

  const location = locateModel(parsed, options);
  const { modelsDir, storePath, entry, url, fileName, name, expected, dest, searchDirs } = location;
  const onDisk = await findModelFile(location);
  if (onDisk !== undefined) {
    await checkModelFile(onDisk, expected, storePath);
    return { path: onDisk, ref: parsed, entry, downloaded: false };
  }

  const howToOffline = () =>
    `To run without a network, put ${fileName} in a folder named by GROVE_MODEL_PATH ` +
    `(colon-separated folders) or in ${modelsDir}. Looked in: ${searchDirs.join(", ")}.`;
  if (options.offline) {
    throw new ModelResolveError(
      `model "${name}" is not on this machine and downloads are off (offline); ` +
        `it comes from ${url}. ${howToOffline()}`,
    );
  }
  try {
    const result = await downloadFile(url, dest, {
      // Trust on first use: an entry without a catalog hash is held to the one seen first.
      sha256: expected.sha256 ?? (await readHashStore(storePath)).trusted[url]?.sha256,
      size: expected.size,
      fetch: options.fetch,
      signal: options.signal,
      onProgress: options.onProgress ?? createProgressReporter({ label: fileName }),
    });
    await recordModelFile(dest, expected, result.sha256, storePath);
  } catch (err) {
    if (err instanceof DownloadError && err.code === "network") {
      throw new ModelResolveError(
        `model "${name}" is not on this machine and could not be downloaded from ${url} ` +
          `(${err.cause instanceof Error ? err.cause.message : err.message}). ${howToOffline()}`,
        { cause: err },
      );
    }
    throw err;
  }
  return { path: dest, ref: parsed, entry, downloaded: true };
}

/** Where a catalog or hf:// model comes from and where it is looked for and kept. */
export interface ModelLocation {
  modelsDir: string; // $GROVE_HOME/models
  storePath: string; // the hash store
  entry?: CatalogEntry;
  url: string;
  fileName: string;
  name: string; // the model, for messages
  expected: ExpectedFile;
  dest: string; // where a download goes
  searchDirs: string[]; // GROVE_MODEL_PATH folders, then modelsDir
  /** The copy shipped with Grove (models/), looked at after searchDirs; no download needed. */
  embedded?: string;
}

export function locateModel(
  parsed: Exclude<ModelRef, { kind: "path" }>,
  options: Omit<ResolveOptions, "onProgress"> = {},
): ModelLocation {
  const catalog = options.catalog ?? CATALOG;
  const groveHome = options.groveHome ?? defaultGroveHome();
  const modelsDir = join(groveHome, "models");
  const storePath = hashStorePath(modelsDir);
  const entry = parsed.kind === "catalog" ? findCatalogEntry(parsed.id, catalog) : undefined;
  if (parsed.kind === "catalog" && !entry) {
    throw new ModelRefError(`unknown model "${parsed.id}"; ${knownIds(catalog)}`);
  }
  const url = entry ? entry.url : hfUrl(parsed as HfModelRef, options.hfEndpoint ?? hfEndpoint());
  const fileName = entry ? catalogFileName(entry) : basename((parsed as HfModelRef).path);
  const name = entry ? entry.id : formatModelRef(parsed);
  const expected = { name, url, sha256: entry?.sha256 ?? null, size: entry?.size ?? null };
  // hf files keep their repo and revision in the cache path: two repos often share a file name.
  const dest = entry ? join(modelsDir, fileName) : join(modelsDir, "hf", ...hfFolders(parsed));
  const searchDirs = [...modelPathDirs(options.modelPath), modelsDir];
  const embedded = entry && options.embedded !== false ? embeddedModelPath(entry) : undefined;
  return { modelsDir, storePath, entry, url, fileName, name, expected, dest, searchDirs, embedded };
}

/** The shipped copy of a catalog model, where it has one and Grove runs from files. */
export function embeddedModelPath(entry: CatalogEntry): string | undefined {
  if (entry.embedded === undefined) return undefined;
  const url = new URL(entry.embedded, import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : undefined;
}

/** The first file of the model found where resolveModel looks (not yet checked), if any. */
export async function findModelFile(location: ModelLocation): Promise<string | undefined> {
  const { searchDirs, fileName, dest, embedded } = location;
  const candidates = [...searchDirs.map((dir) => join(dir, fileName)), dest];
  if (embedded !== undefined) candidates.push(embedded);
  for (const candidate of new Set(candidates)) {
    if (await isFile(candidate)) return candidate;
  }
  return undefined;
}

function hfFolders(ref: ModelRef): string[] {
  const hf = ref as HfModelRef;
  return [hf.owner, hf.repo, ...hf.revision.split("/"), ...hf.path.split("/")];
}

async function localModelFile(path: string): Promise<string> {
  const absolute = resolvePath(expandHome(path));
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(absolute);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ModelResolveError(`model file not found: ${path} (looked at ${absolute})`);
    }
    throw err;
  }
  if (!info.isFile) throw new ModelResolveError(`model path ${absolute} is not a file`);
  return absolute;
}

function defaultGroveHome(): string {
  const fromEnv = env("GROVE_HOME");
  return fromEnv ? expandHome(fromEnv) : join(homeDir(), ".grove");
}

/** GROVE_MODEL_PATH-style folders, `~` expanded, empty entries dropped. */
export function modelPathDirs(modelPath: string | string[] | undefined): string[] {
  const raw = modelPath ?? env("GROVE_MODEL_PATH") ?? "";
  const list = Array.isArray(raw) ? raw : raw.split(":");
  return list.map((d) => d.trim()).filter((d) => d !== "").map((d) => resolvePath(expandHome(d)));
}

export function expandHome(path: string): string {
  if (path === "~") return homeDir();
  if (path.startsWith("~/")) return join(homeDir(), path.slice(2));
  return path;
}

function homeDir(): string {
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) throw new ModelResolveError("cannot expand ~: HOME is not set");
  return home;
}

function hfEndpoint(): string {
  return env("HF_ENDPOINT") ?? "https://huggingface.co";
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
