// The model catalog: named, known-good GGUF files that a bare id like `stories260K` refers to.
// An entry's sha256/size is null where nobody has verified it; such an entry is checked by
// trust on first use instead (see download.ts, HashStore).
import catalogJson from "./catalog.json" with { type: "json" };

export interface CatalogEntry {
  id: string;
  name: string;
  url: string;
  sha256: string | null; // lowercase hex; null: recorded on first download
  size: number | null; // bytes; null: unknown until downloaded
  architecture: string; // GGUF general.architecture
  quantization: string; // the dominant weight type, e.g. F32, Q8_0, Q4_K_M
  license?: string;
  contextLength?: number;
  /** A copy shipped in this folder (its file name), used when no other is on the machine. */
  embedded?: string;
  source?: string; // where the sha256 and size come from
  /**
   * Bytes, rounded as published sources list the file, where no exact size is recorded: only for
   * the memory estimate (models/catalog-fit.ts), never to check a download.
   */
  approxSize?: number;
  /** The KV cache's shape, for the memory a context needs before the file is on this machine. */
  kvCache?: KvCacheShape;
}

/**
 * The layers that keep a KV cache and one token's key and value widths, as the GGUF header gives
 * them (`{arch}.block_count`, `.attention.head_count_kv`, `.attention.key_length`,
 * `.attention.value_length`). A hybrid model's linear-attention layers keep a fixed recurrent
 * state instead and are not counted in `layers`.
 */
export interface KvCacheShape {
  layers: number;
  kvHeads: number;
  keyLength: number;
  valueLength: number;
  /**
   * Of `layers`, those that attend over a sliding window of `window` positions (gemma3's local
   * layers, gpt-oss's even ones; `.attention.sliding_window`): their caches hold only the window
   * and a step's rows (inference/swa-cache.ts). Both or neither.
   */
  windowLayers?: number;
  window?: number;
}

export const DEFAULT_MODEL_ID = "stories260K";

export const CATALOG: readonly CatalogEntry[] = validateCatalog(catalogJson as unknown);

/** Exact id first, then case-insensitive, so `stories260k` still works. */
export function findCatalogEntry(
  id: string,
  catalog: readonly CatalogEntry[] = CATALOG,
): CatalogEntry | undefined {
  return catalog.find((e) => e.id === id) ??
    catalog.find((e) => e.id.toLowerCase() === id.toLowerCase());
}

export function catalogIds(catalog: readonly CatalogEntry[] = CATALOG): string[] {
  return catalog.map((e) => e.id);
}

/** The file name a catalog model is stored and looked up under: the last segment of its URL. */
export function catalogFileName(entry: CatalogEntry): string {
  return urlFileName(entry.url);
}

function urlFileName(url: string): string {
  const segments = new URL(url).pathname.split("/").filter((s) => s !== "");
  const last = segments.at(-1);
  if (last === undefined) throw new Error(`URL has no file name: ${url}`);
  return decodeURIComponent(last);
}

/** Fails at load time on a malformed catalog rather than at the first download. */
export function validateCatalog(data: unknown): CatalogEntry[] {
  if (!Array.isArray(data)) throw new Error("models/catalog.json: expected an array of entries");
  const seen = new Set<string>();
  return data.map((raw, i) => {
    const where = `models/catalog.json entry ${i}`;
    if (typeof raw !== "object" || raw === null) throw new Error(`${where}: not an object`);
    const e = raw as Record<string, unknown>;
    for (const key of ["id", "name", "url", "architecture", "quantization"]) {
      if (typeof e[key] !== "string" || e[key] === "") {
        throw new Error(`${where}: "${key}" must be a non-empty string`);
      }
    }
    const id = e.id as string;
    if (seen.has(id.toLowerCase())) throw new Error(`${where}: duplicate id "${id}"`);
    seen.add(id.toLowerCase());
    if (e.sha256 !== null && !(typeof e.sha256 === "string" && /^[0-9a-f]{64}$/.test(e.sha256))) {
      throw new Error(`${where} (${id}): "sha256" must be 64 lowercase hex digits or null`);
    }
    if (e.size !== null && !(Number.isSafeInteger(e.size) && (e.size as number) > 0)) {
      throw new Error(`${where} (${id}): "size" must be a positive integer or null`);
    }
    if (e.embedded !== undefined && !/^[\w.-]+\.gguf$/.test(String(e.embedded))) {
      throw new Error(`${where} (${id}): "embedded" must be a .gguf file name in models/`);
    }
    if (!(e.url as string).startsWith("https://")) {
      throw new Error(`${where} (${id}): "url" must be an https URL`);
    }
    if (e.approxSize !== undefined) {
      if (!isCount(e.approxSize)) {
        throw new Error(`${where} (${id}): "approxSize" must be a positive integer`);
      }
      if (e.size !== null) {
        throw new Error(`${where} (${id}): "approxSize" only where "size" is null`);
      }
    }
    if (e.kvCache !== undefined) validateKvCache(e.kvCache, `${where} (${id})`);
    return e as unknown as CatalogEntry;
  });
}

function isCount(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) > 0;
}

function validateKvCache(v: unknown, where: string): void {
  const shape = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
  for (const key of ["layers", "kvHeads", "keyLength", "valueLength"]) {
    if (!isCount(shape[key])) {
      throw new Error(`${where}: "kvCache.${key}" must be a positive integer`);
    }
  }
  if (shape.windowLayers === undefined && shape.window === undefined) return;
  for (const key of ["windowLayers", "window"]) {
    if (!isCount(shape[key])) {
      throw new Error(`${where}: "kvCache.${key}" must be a positive integer (both or neither)`);
    }
  }
  if ((shape.windowLayers as number) > (shape.layers as number)) {
    throw new Error(`${where}: "kvCache.windowLayers" exceeds "kvCache.layers"`);
  }
}
