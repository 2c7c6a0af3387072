// Resumable, verified HTTP downloads. The file grows in `dest.part`; it gets its final name
// only once its size and sha256 are right, so a file under the final name is always whole.
import { createHash, type Hash } from "node:crypto";
import { dirname, join } from "node:path";

export interface DownloadProgress {
  url: string;
  received: number; // bytes in the .part file so far, resumed bytes included
  total: number | undefined; // the whole file's size, when the server or the caller says it
  resumedFrom: number; // bytes already on disk when this transfer began
  done: boolean;
}

export interface DownloadOptions {
  sha256?: string | null; // expected lowercase hex; checked while streaming
  size?: number | null; // expected bytes
  fetch?: typeof fetch;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  retries?: number; // resumes after a connection cut mid-body; default 2
}

export interface DownloadResult {
  path: string;
  sha256: string;
  size: number;
  resumedFrom: number; // bytes reused from an earlier partial download
}

export type DownloadErrorCode = "network" | "http" | "interrupted" | "size" | "hash";

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    readonly url: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DownloadError";
  }
}

export async function downloadFile(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const retries = options.retries ?? 2;
  for (let attempt = 0;; attempt++) {
    try {
      return await attemptDownload(url, dest, options);
    } catch (err) {
      // Only a cut connection is worth another try: the .part file keeps what arrived.
      const retry = err instanceof DownloadError && err.code === "interrupted" &&
        attempt < retries && !options.signal?.aborted;
      if (!retry) throw err;
    }
  }
}

async function attemptDownload(
  url: string,
  dest: string,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const part = `${dest}.part`;
  const expectedSize = options.size ?? undefined;
  await Deno.mkdir(dirname(dest), { recursive: true });

  let offset = await fileSize(part);
  if (expectedSize !== undefined && offset > expectedSize) {
    await removeIfExists(part);
    offset = 0;
  }
  let hash = createHash("sha256");
  if (offset > 0) await hashFileInto(part, hash);
  if (expectedSize !== undefined && offset === expectedSize) {
    // A finished part that was never renamed (the process died in between): no request needed.
    return await finish(url, part, dest, hash, offset, offset, options);
  }

  const transfer = await startTransfer(url, offset, options);
  if (transfer.offset !== offset) {
    hash = createHash("sha256"); // the server sends the whole file again
    offset = 0;
  }
  const resumedFrom = offset;
  const { response, total } = transfer;
  if (expectedSize !== undefined && total !== undefined && total !== expectedSize) {
    await response.body?.cancel();
    await removeIfExists(part);
    throw new DownloadError(
      "size",
      url,
      `${url} is ${total} bytes according to the server, but ${expectedSize} bytes were expected`,
    );
  }

  const file = await Deno.open(
    part,
    offset === 0 ? { write: true, create: true, truncate: true } : { write: true, append: true },
  );
  let received = offset;
  const report = (done: boolean) =>
    options.onProgress?.({ url, received, total: total ?? expectedSize, resumedFrom, done });
  try {
    report(false);
    const reader = response.body!.getReader();
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (options.signal?.aborted) throw err;
        throw new DownloadError(
          "interrupted",
          url,
          `download of ${url} was interrupted after ${received} of ${total ?? "?"} bytes (${
            errorText(err)
          }); the partial file ${part} is kept and the next try resumes it`,
          { cause: err },
        );
      }
      if (chunk.done) break;
      await writeAll(file, chunk.value);
      hash.update(chunk.value);
      received += chunk.value.length;
      report(false);
    }
  } finally {
    file.close();
  }
  if (total !== undefined && received < total) {
    throw new DownloadError(
      "interrupted",
      url,
      `download of ${url} ended early: ${received} of ${total} bytes; the next try resumes it`,
    );
  }
  return await finish(url, part, dest, hash, received, resumedFrom, options);
}

async function finish(
  url: string,
  part: string,
  dest: string,
  hash: Hash,
  size: number,
  resumedFrom: number,
  options: DownloadOptions,
): Promise<DownloadResult> {
  if (options.size != null && size !== options.size) {
    await removeIfExists(part);
    throw new DownloadError(
      "size",
      url,
      `download of ${url} has ${size} bytes, expected ${options.size}; the partial file was deleted`,
    );
  }
  const sha256 = hash.digest("hex");
  if (options.sha256 != null && sha256 !== options.sha256.toLowerCase()) {
    await removeIfExists(part);
    throw new DownloadError(
      "hash",
      url,
      `sha256 mismatch for ${url}: expected ${options.sha256}, got ${sha256}; ` +
        `the downloaded file was deleted`,
    );
  }
  await Deno.rename(part, dest);
  options.onProgress?.({ url, received: size, total: size, resumedFrom, done: true });
  return { path: dest, sha256, size, resumedFrom };
}

interface Transfer {
  response: Response;
  offset: number; // where the response body starts in the file
  total: number | undefined;
}

async function startTransfer(url: string, offset: number, options: DownloadOptions) {
  const response = await request(url, offset, options);
  if (offset > 0) {
    const range = parseContentRange(response.headers.get("content-range"));
    if (response.status === 206 && range?.start === offset) {
      return { response, offset, total: range.total } satisfies Transfer;
    }
    if (response.status === 206 || response.status === 416) {
      // A range that does not continue our part, or a part longer than the file: start over.
      await response.body?.cancel();
      return await startTransfer(url, 0, options);
    }
    // 200: the server ignored Range and sends the whole file, which we take from byte 0.
  }
  if (!response.ok) {
    await response.body?.cancel();
    const statusText = response.statusText ? ` ${response.statusText}` : "";
    throw new DownloadError("http", url, `HTTP ${response.status}${statusText} for ${url}`);
  }
  const length = response.headers.get("content-length");
  const total = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  return { response, offset: 0, total } satisfies Transfer;
}

async function request(url: string, offset: number, options: DownloadOptions) {
  // identity: a compressed body would make Content-Length and Range count different bytes.
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  try {
    return await (options.fetch ?? fetch)(url, { headers, signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new DownloadError("network", url, `cannot reach ${url}: ${errorText(err)}`, {
      cause: err,
    });
  }
}

function parseContentRange(header: string | null) {
  const m = header?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** sha256 of a file as lowercase hex, read in a stream so big models never sit in memory. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  await hashFileInto(path, hash);
  return hash.digest("hex");
}

async function hashFileInto(path: string, hash: Hash): Promise<void> {
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk); // closes the file at the end
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await file.write(bytes.subarray(written));
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

// --- Files already on disk ------------------------------------------------------------------
// $GROVE_HOME/models/hashes.json holds two maps:
//  trusted:  URL -> the sha256 first seen for a model the catalog has no hash for (trust on
//            first use: later downloads and copies of that model must match it);
//  verified: absolute path -> sha256, size and mtime of a file already checked, so a multi-GB
//            model is hashed once, not on every start. A file whose size or mtime changed is
//            hashed again.

export interface HashStore {
  version: 1;
  trusted: Record<string, { sha256: string; size: number; firstSeen: string; at: string }>;
  verified: Record<string, { sha256: string; size: number; mtimeMs: number }>;
}

export interface ExpectedFile {
  name: string; // the model, for messages
  url: string;
  sha256: string | null;
  size: number | null;
}

export class IntegrityError extends Error {
  override name = "IntegrityError";
}

export function hashStorePath(modelsDir: string): string {
  return join(modelsDir, "hashes.json");
}

export async function readHashStore(path: string): Promise<HashStore> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { version: 1, trusted: {}, verified: {} };
    throw err;
  }
  const data = JSON.parse(text) as Partial<HashStore>;
  if (typeof data !== "object" || data === null || data.version !== 1) {
    throw new IntegrityError(`${path} is not a Grove hash store (version 1); move it away`);
  }
  return { version: 1, trusted: data.trusted ?? {}, verified: data.verified ?? {} };
}

/** Checks a model file against its expected size and sha256; returns its sha256. */
export async function checkModelFile(
  path: string,
  expected: ExpectedFile,
  storePath: string,
): Promise<string> {
  const info = await Deno.stat(path);
  if (expected.size !== null && info.size !== expected.size) {
    throw new IntegrityError(
      `${path} is ${info.size} bytes, but model "${expected.name}" (${expected.url}) is ` +
        `${expected.size} bytes; delete or replace the file`,
    );
  }
  const store = await readHashStore(storePath);
  const mtimeMs = info.mtime?.getTime() ?? 0;
  const seen = store.verified[path];
  const sha256 = seen && seen.size === info.size && seen.mtimeMs === mtimeMs
    ? seen.sha256
    : await sha256File(path);
  const trusted = store.trusted[expected.url];
  const want = expected.sha256 ?? trusted?.sha256;
  if (want !== undefined && sha256 !== want) {
    const origin = expected.sha256 !== null
      ? "from the catalog; delete or replace the file"
      : `recorded on first use from ${trusted?.firstSeen}; if the model changed on purpose, ` +
        `remove its entry from ${storePath}`;
    throw new IntegrityError(
      `sha256 mismatch for ${path} (model "${expected.name}"): expected ${want} (${origin}), ` +
        `got ${sha256}`,
    );
  }
  if (!seen || seen.sha256 !== sha256 || seen.mtimeMs !== mtimeMs || !trusted) {
    await recordModelFile(path, expected, sha256, storePath, store);
  }
  return sha256;
}

/** Remembers a checked file (and, for a model without a catalog hash, trusts its sha256). */
export async function recordModelFile(
  path: string,
  expected: ExpectedFile,
  sha256: string,
  storePath: string,
  store?: HashStore,
): Promise<void> {
  const info = await Deno.stat(path);
  const data = store ?? await readHashStore(storePath);
  data.verified[path] = { sha256, size: info.size, mtimeMs: info.mtime?.getTime() ?? 0 };
  if (expected.sha256 === null && !data.trusted[expected.url]) {
    data.trusted[expected.url] = {
      sha256,
      size: info.size,
      firstSeen: path,
      at: new Date().toISOString(),
    };
  }
  try {
    await Deno.mkdir(dirname(storePath), { recursive: true });
    const tmp = `${storePath}.${Deno.pid}.tmp`; // rename: readers never see half a file
    await Deno.writeTextFile(tmp, JSON.stringify(data, null, 2) + "\n");
    await Deno.rename(tmp, storePath);
  } catch (err) {
    // A read-only GROVE_HOME still serves models; they are just hashed again next time.
    const readOnly = err instanceof Deno.errors.PermissionDenied ||
      err instanceof Deno.errors.NotCapable || (err as { code?: string }).code === "EROFS";
    if (!readOnly) throw err;
  }
}
