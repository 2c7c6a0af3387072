// The catalog as the dashboard offers it (docs/http-api.md#models): each model with what it needs
// in memory, whether that fits this machine and whether Grove's engines run its architecture at
// all. Where a copy of the model is on this machine (downloaded, in GROVE_MODEL_PATH or shipped)
// its GGUF header gives the planner's own estimate: weights as held, the KV cache at the default
// context and scratch (inference/model-shape.ts). Without a header, an entry that records its KV
// cache's shape (`kvCache`) needs its file size, the cache at the default context counted as the
// planner counts it, and a scratch allowance; this keeps a mixture-of-experts file (weights large,
// cache small) and a long-context one (cache counted at the default context, not the model's own)
// close to the planner's figure. An entry without one falls back to size × 1.2, a rough allowance
// that undercounts long contexts and tiny models: stories260K is a 1.1 MiB file whose header-based
// estimate is 5.9 MiB, mostly scratch. A model installed or shipped always gets the header's.
import {
  CONTEXT_FLOOR,
  kvBytesPerPosition,
  modelConfigOf,
  modelShapeOf,
  openGguf,
  SCRATCH_ROWS,
  SUPPORTED_ARCHITECTURES,
  wholeModelBytes,
} from "../inference/mod.ts";
import { CATALOG, type CatalogEntry, type KvCacheShape } from "./catalog.ts";
import { type InstalledOptions, listInstalledModels } from "./installed.ts";
import { findModelFile, locateModel } from "./resolve.ts";

export interface CatalogModel {
  id: string;
  name: string;
  size: number | null; // the file's bytes; null where nobody has measured it yet
  /** The file's size as published sources round it, where no exact size is known. */
  approxSize: number | null;
  architecture: string;
  quantization: string;
  /** The model's own context length, where the catalog records it. */
  contextLength: number | null;
  /**
   * The context the need is counted at: the least a node starts it with (its own length, at most
   * 4096); a node takes more, up to the model's own, where memory allows.
   */
  ctxSize: number;
  /** Memory to serve it whole at `ctxSize`; null where neither header nor size is known. */
  needsBytes: number | null;
  /** Memory to serve it whole at its own context length; null where that cannot be told. */
  ownContextBytes: number | null;
  /**
   * "header": the planner's estimate from the GGUF header; "shape": the file's size (or its
   * approximate size) plus the KV cache from the catalog's `kvCache` plus a scratch allowance;
   * "size": size × 1.2.
   */
  needsFrom: "header" | "shape" | "size" | null;
  /**
   * Grove's engines run this architecture (inference/model-config.ts SUPPORTED_ARCHITECTURES);
   * false: it is listed for what it needs, and the dashboard offers no pull.
   */
  runs: boolean;
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

/** Without a header or a KV-cache shape: weights at their file size plus a fifth for the rest. */
const SIZE_FACTOR = 1.2;

/**
 * Without `--ctx-size` a node takes the model's own context where memory allows, else the largest
 * that fits, but never less than the model's own or this (inference/context-size.ts): the least
 * it runs with, so what the catalog's "fits" is counted at. A model whose length the catalog does
 * not record is counted at it.
 */
export const DEFAULT_CTX_CAP = CONTEXT_FLOOR;

const MIB = 1024 ** 2;
/**
 * Scratch without a header: a twentieth of the weights, within 64 to 256 MiB. The planner's
 * activation estimate (model-shape.ts activationBytes) for these catalog models at the default
 * context runs from ~40 MiB (0.5B) to ~170 MiB (7B dense); a hybrid model's recurrent state
 * (Qwen3.5-35B-A3B: 30 linear-attention layers, ~2 MiB each) falls within the same allowance.
 */
export function scratchAllowance(weightBytes: number): number {
  return Math.round(Math.min(256 * MIB, Math.max(64 * MIB, weightBytes / 20)));
}

/**
 * Keys and values of every cached layer at `ctxSize`, as the planner counts them (wider width,
 * f16 as the engines' default): a sliding-window layer's at the window and a step's rows
 * (model-shape.ts SCRATCH_ROWS).
 */
export function kvCacheBytes(shape: KvCacheShape, ctxSize: number): number {
  const perPosition = kvBytesPerPosition({
    kvHeads: shape.kvHeads,
    headDim: shape.keyLength,
    valueDim: shape.valueLength,
  });
  const windowed = shape.windowLayers ?? 0;
  const ring = Math.min(ctxSize, (shape.window ?? 0) + SCRATCH_ROWS);
  return perPosition * ((shape.layers - windowed) * ctxSize + windowed * ring);
}

export function defaultCtxSize(entry: CatalogEntry): number {
  return Math.min(entry.contextLength ?? DEFAULT_CTX_CAP, DEFAULT_CTX_CAP);
}

/**
 * What `entry` needs at `ctxSize` without its header, from `fileBytes` (its size, exact or
 * approximate); without a `kvCache` shape only size × 1.2, whatever the context.
 */
export function needsWithoutHeader(
  entry: CatalogEntry,
  fileBytes: number,
  ctxSize = defaultCtxSize(entry),
): { bytes: number; from: "shape" | "size" } {
  if (entry.kvCache === undefined) {
    return { bytes: Math.ceil(fileBytes * SIZE_FACTOR), from: "size" };
  }
  const bytes = fileBytes + kvCacheBytes(entry.kvCache, ctxSize) + scratchAllowance(fileBytes);
  return { bytes, from: "shape" };
}

export function runsArchitecture(architecture: string): boolean {
  return (SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture);
}

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
    const approxSize = size === null ? entry.approxSize ?? null : null;
    const fileBytes = size ?? approxSize;
    const estimate = fromHeader !== undefined
      ? { bytes: fromHeader.least, from: "header" as const }
      : fileBytes === null
      ? null
      : needsWithoutHeader(entry, fileBytes);
    const needsBytes = estimate?.bytes ?? null;
    const own = fromHeader?.own ??
      (fileBytes !== null && entry.kvCache !== undefined && entry.contextLength !== undefined
        ? needsWithoutHeader(entry, fileBytes, entry.contextLength).bytes
        : null);
    models.push({
      ...facts(entry),
      size,
      approxSize,
      contextLength: entry.contextLength ?? null,
      ctxSize: defaultCtxSize(entry),
      needsBytes,
      ownContextBytes: own,
      needsFrom: estimate?.from ?? null,
      runs: runsArchitecture(entry.architecture),
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

/**
 * The planner's estimate for the whole model, as `serve` computes it, at the least context a node
 * takes and at the model's own; undefined if unreadable.
 */
async function headerNeeds(path: string): Promise<{ least: number; own: number } | undefined> {
  try {
    const file = await openGguf(path);
    const config = modelConfigOf(file);
    const at = (ctx: number) => wholeModelBytes(modelShapeOf(file, config, ctx));
    return {
      least: at(Math.min(config.contextLength, DEFAULT_CTX_CAP)),
      own: at(config.contextLength),
    };
  } catch {
    return undefined; // an architecture the engines do not run: its size says what it can
  }
}
