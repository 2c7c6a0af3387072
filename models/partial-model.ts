// A remote model kept only in the byte ranges this node needs: a split stage reads only its own
// tensors (docs/http-api.md#split), so a stage of a model that is not on disk fetches just
// those. The bytes live in NAME.gguf.partial beside where the whole file would go, a name
// resolveModel never takes for a model; nothing renames it, since without every byte its
// sha256 cannot be checked. Only servers that answer a Range GET with 206 are used this way.
import { GgufError, type GgufFile, openGguf } from "../inference/mod.ts";
import { CATALOG } from "./catalog.ts";
import { DownloadError, IntegrityError, readHashStore } from "./download.ts";
import {
  findModelFile,
  locateModel,
  type ModelLocation,
  type ModelRef,
  parseModelRef,
  type ResolveOptions,
} from "./resolve.ts";
import {
  type ByteRange,
  coalesceRanges,
  missingRanges,
  normalizeRanges,
  prefixEnd,
  rangeBytes,
} from "./byte-ranges.ts";
import { parseContentRange, type RangeInit, requestRange, statedSha256 } from "./range-source.ts";
import { openSparseFile, readSidecar, type SparseFile } from "./sparse-file.ts";

export interface PartialModelOptions extends Omit<ResolveOptions, "onProgress"> {
  /** The first request's bytes; doubled until the GGUF header parses. Default 256 KiB. */
  firstBytes?: number;
  /** A header that has not parsed by then is refused. Default 256 MiB. */
  maxHeaderBytes?: number;
  /** Missing ranges this close are fetched in one request, the gap too. Default 64 KiB. */
  mergeGapBytes?: number;
  /** Tries after a cut connection, each resuming where it stopped. Default 2. */
  retries?: number;
}

export interface RangeProgress {
  fetched: number; // bytes fetched by this ensure so far
  total: number; // bytes this ensure fetches
  done: boolean;
}

export interface EnsureOptions {
  onProgress?: (progress: RangeProgress) => void;
}

export interface PartialModel {
  /** The sparse file: as long as the model, right wherever present() says. */
  path: string;
  url: string;
  ref: ModelRef;
  /** The model's identity: the catalog's sha256, else the one the server states. */
  sha256: string;
  size: number;
  /** The GGUF header, read from the file. */
  header: GgufFile;
  present(): ByteRange[];
  /** Fetches whatever of `ranges` is not on disk yet; resolves with the bytes fetched. */
  ensure(ranges: readonly ByteRange[], options?: EnsureOptions): Promise<number>;
}

const FIRST_BYTES = 256 << 10;
const MAX_HEADER_BYTES = 256 << 20;
const MERGE_GAP = 64 << 10;

/**
 * The partial model for a catalog id or hf:// reference that is not on this machine, with its
 * header fetched; undefined where the whole file is the way: a local path or file, downloads
 * off, a server that is unreachable, ignores Range or states no sha256 for a model the catalog
 * has none for (a split candidate needs the identity).
 */
export async function openPartialModel(
  ref: string | ModelRef,
  options: PartialModelOptions = {},
): Promise<PartialModel | undefined> {
  const parsed = typeof ref === "string" ? parseModelRef(ref, options.catalog ?? CATALOG) : ref;
  if (parsed.kind === "path" || options.offline) return undefined;
  const location = locateModel(parsed, options);
  if (await findModelFile(location) !== undefined) return undefined;
  const path = `${location.dest}.partial`;
  const init: RangeInit = { fetch: options.fetch, signal: options.signal };
  const first = Math.max(1, options.firstBytes ?? FIRST_BYTES);

  // The probe asks for the start of the header; where an earlier run has it, for one byte.
  const stored = await readSidecar(path);
  const had = prefixEnd(stored?.ranges ?? []);
  const probeRange: ByteRange = had >= Math.min(first, stored?.size ?? first)
    ? [0, 1]
    : [had, first];
  let probe;
  try {
    probe = await requestRange(location.url, probeRange, init);
  } catch (err) {
    if (err instanceof DownloadError && err.code === "network") return undefined;
    throw err;
  }
  const { response, hops } = probe;
  const range = parseContentRange(response.headers.get("content-range"));
  const ranged = response.status === 206 && range?.start === probeRange[0] && !!range.total;
  const sha256 = ranged ? await identityOf(location, hops) : undefined;
  if (!ranged || !sha256) {
    await response.body?.cancel();
    return undefined;
  }
  const { url, entry } = location;
  const size = range.total!;
  if (entry?.size != null && size !== entry.size) {
    await response.body?.cancel();
    throw new DownloadError(
      "size",
      url,
      `${url} is ${size} bytes according to the server, but ${entry.size} bytes were expected`,
    );
  }
  const file = await openSparseFile(path, { url, size, sha256 });
  if (missingRanges([[range.start, range.end]], file.present()).length === 0) {
    await response.body?.cancel();
  } else {
    await file.write(range.start, Math.min(range.end, size) - range.start, response.body!);
  }
  const fetchRanges = createFetcher(file, init, options);
  const header = await readHeader(file, fetchRanges, first, options.maxHeaderBytes);
  return {
    path,
    url,
    ref: parsed,
    sha256,
    size,
    header,
    present: file.present,
    ensure: fetchRanges,
  };
}

/**
 * The catalog's sha256 or, without one, the server's; a server that states another sha256 than
 * the catalog, or than the one recorded on first use, serves another file.
 */
async function identityOf(location: ModelLocation, hops: Headers[]): Promise<string | undefined> {
  const stated = statedSha256(hops);
  const { entry, url, name, storePath } = location;
  const known = entry?.sha256 ?? (await readHashStore(storePath)).trusted[url]?.sha256;
  if (known && stated && stated !== known) {
    throw new IntegrityError(
      `sha256 mismatch for model "${name}": ${url} states ${stated}, expected ${known} ` +
        `(${entry?.sha256 ? "from the catalog" : `recorded on first use in ${storePath}`})`,
    );
  }
  return known ?? stated;
}

/** `ensure`: missing ranges merged, fetched one request each, resumed after a cut. */
function createFetcher(file: SparseFile, init: RangeInit, options: PartialModelOptions) {
  const { url, size } = file.identity;
  const gap = options.mergeGapBytes ?? MERGE_GAP;
  const retries = options.retries ?? 2;

  const fetchOnce = async ([start, end]: ByteRange, onBytes: (n: number) => void) => {
    const { response } = await requestRange(url, [start, end], init);
    const range = parseContentRange(response.headers.get("content-range"));
    if (response.status !== 206 || range?.start !== start || range.total !== size) {
      await response.body?.cancel();
      const got = response.status === 206
        ? `Content-Range ${response.headers.get("content-range")}`
        : `HTTP ${response.status}`;
      throw new DownloadError(
        "http",
        url,
        `asked ${url} for bytes ${start}-${end - 1} of ${size}, got ${got}`,
      );
    }
    await file.write(start, Math.min(end, range.end) - start, response.body!, onBytes);
  };

  let queue: Promise<unknown> = Promise.resolve();
  const ensure = async (want: readonly ByteRange[], ensureOptions: EnsureOptions = {}) => {
    for (const [s, e] of want) {
      if (!(Number.isSafeInteger(s) && Number.isSafeInteger(e) && 0 <= s && s <= e && e <= size)) {
        throw new RangeError(`byte range [${s}, ${e}) is outside the model's ${size} bytes`);
      }
    }
    const todo = coalesceRanges(missingRanges(want, file.present()), gap);
    const total = rangeBytes(todo);
    let fetched = 0;
    const report = (done: boolean) => ensureOptions.onProgress?.({ fetched, total, done });
    report(false);
    for (const range of todo) {
      for (let attempt = 0;; attempt++) {
        // After a cut, or a server that sent less than asked, only what is still missing.
        const rest = missingRanges([range], file.present())[0];
        if (rest === undefined) break;
        try {
          await fetchOnce(rest, (n) => {
            fetched += n;
            report(false);
          });
          attempt = -1; // progress made: a later cut gets its own tries
        } catch (err) {
          const again = err instanceof DownloadError && err.code === "interrupted" &&
            attempt < retries && !init.signal?.aborted;
          if (!again) throw err;
        }
      }
    }
    report(true);
    return fetched;
  };
  // One ensure at a time: a second one then finds the first one's bytes present.
  return (want: readonly ByteRange[], ensureOptions?: EnsureOptions): Promise<number> => {
    const result = queue.then(() => ensure(normalizeRanges(want), ensureOptions));
    queue = result.catch(() => {});
    return result;
  };
}

/**
 * The GGUF header, fetching twice as much of the file's beginning until it parses from bytes
 * that are all there: the unfetched rest reads as zeros, which can parse (zero counts, empty
 * names), so a header is taken only when it ends (`dataOffset`) within what was fetched.
 */
async function readHeader(
  file: SparseFile,
  fetchRanges: (want: readonly ByteRange[]) => Promise<number>,
  first: number,
  maxHeaderBytes = MAX_HEADER_BYTES,
): Promise<GgufFile> {
  const { url, size } = file.identity;
  for (let want = Math.min(first, size);; want = Math.min(want * 2, size)) {
    await fetchRanges([[0, want]]);
    const have = prefixEnd(file.present());
    try {
      const header = await openGguf(file.path);
      if (header.dataOffset <= have || have >= size) return header;
    } catch (err) {
      if (!(err instanceof GgufError) || have >= size) throw err;
      if (have >= 4 && !(await startsWithMagic(file.path))) {
        throw new GgufError(`${url} is not a GGUF file: it does not start with "GGUF"`);
      }
    }
    if (want >= maxHeaderBytes) {
      throw new GgufError(`${url}: the GGUF header does not end within ${want} bytes`);
    }
  }
}

async function startsWithMagic(path: string): Promise<boolean> {
  const file = await Deno.open(path, { read: true });
  try {
    const bytes = new Uint8Array(4);
    return (await file.read(bytes)) === 4 && new TextDecoder().decode(bytes) === "GGUF";
  } finally {
    file.close();
  }
}
