// A file as long as a remote model but holding only some of its bytes (a sparse file: the rest
// takes no disk and reads as zeros), and beside it, in PATH.json, which ranges are there. The
// sidecar only ever names bytes already written and synced, so a process killed mid-transfer
// leaves a sidecar that is true, if short, and the next transfer resumes from it.
import { dirname } from "node:path";
import { DownloadError } from "./download.ts";
import { type ByteRange, normalizeRanges, parseRanges } from "./byte-ranges.ts";
import { errorText } from "./range-source.ts";

/** What the bytes are bytes of: a sidecar of another file is not this file's. */
export interface SparseIdentity {
  url: string;
  size: number;
  sha256: string;
}

export interface SparseFile {
  readonly path: string;
  readonly identity: SparseIdentity;
  /** The ranges on disk. */
  present(): ByteRange[];
  /**
   * Writes `body`'s first `limit` bytes from `start` on, recording them as they land;
   * `onBytes` hears each chunk. A body that fails or ends early throws "interrupted" after
   * recording what arrived.
   */
  write(
    start: number,
    limit: number,
    body: ReadableStream<Uint8Array>,
    onBytes?: (n: number) => void,
  ): Promise<void>;
}

// How often a long transfer records its progress: a kill loses at most this much.
const PERSIST_EVERY = 4 << 20;

export function sidecarPath(path: string): string {
  return `${path}.json`;
}

/** The file at `path` for `identity`: what it holds if its sidecar says so, else empty. */
export async function openSparseFile(path: string, identity: SparseIdentity): Promise<SparseFile> {
  let ranges = await presentRanges(path, identity) ?? [];
  if (ranges.length === 0) {
    // Another file's bytes, or none: start empty, the old blocks freed.
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeFile(path, new Uint8Array(0));
    await Deno.truncate(path, identity.size);
    await writeSidecar(path, identity, ranges);
  }
  let queue: Promise<unknown> = Promise.resolve();
  const write = async (
    start: number,
    limit: number,
    body: ReadableStream<Uint8Array>,
    onBytes?: (n: number) => void,
  ) => {
    const file = await Deno.open(path, { write: true });
    let written = 0, recorded = 0;
    const record = async () => {
      if (written === recorded) return;
      ranges = normalizeRanges([...ranges, [start + recorded, start + written]]);
      recorded = written;
      await file.syncData(); // the bytes before the sidecar that names them
      await writeSidecar(path, identity, ranges);
    };
    const reader = body.getReader();
    try {
      await file.seek(start, Deno.SeekMode.Start);
      while (written < limit) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw new DownloadError(
            "interrupted",
            identity.url,
            `transfer of bytes ${start}-${start + limit} of ${identity.url} was interrupted ` +
              `after ${written} bytes (${errorText(err)}); the next try resumes it`,
            { cause: err },
          );
        }
        if (chunk.done) {
          throw new DownloadError(
            "interrupted",
            identity.url,
            `transfer of bytes ${start}-${start + limit} of ${identity.url} ended after ` +
              `${written} bytes; the next try resumes it`,
          );
        }
        const bytes = chunk.value.subarray(0, limit - written);
        for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
        written += bytes.length;
        onBytes?.(bytes.length);
        if (written - recorded >= PERSIST_EVERY) await record();
      }
    } finally {
      await reader.cancel().catch(() => {});
      try {
        await record();
      } finally {
        file.close();
      }
    }
  };
  return {
    path,
    identity,
    present: () => ranges.map(([s, e]): ByteRange => [s, e]),
    // One writer at a time: each write's record() must see the other's ranges.
    write(...args) {
      const result = queue.then(() => write(...args));
      queue = result.catch(() => {});
      return result;
    },
  };
}

/** What the sidecar at `path` says, if anything: a hint until its identity is checked. */
export async function readSidecar(
  path: string,
): Promise<(SparseIdentity & { ranges: ByteRange[] }) | undefined> {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(await Deno.readTextFile(sidecarPath(path)));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof SyntaxError) return undefined;
    throw err;
  }
  const { version, url, size, sha256 } = data ?? {};
  if (version !== 1 || typeof url !== "string" || typeof sha256 !== "string") return undefined;
  if (!Number.isSafeInteger(size)) return undefined;
  const ranges = parseRanges(data.ranges, size as number);
  return ranges && { url, size: size as number, sha256, ranges };
}

/** The sidecar's ranges if it is this identity's and the file has its length. */
async function presentRanges(path: string, identity: SparseIdentity) {
  const stored = await readSidecar(path);
  if (stored?.size !== identity.size || stored.sha256 !== identity.sha256) return undefined;
  try {
    if ((await Deno.stat(path)).size !== identity.size) return undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  return stored.ranges;
}

async function writeSidecar(path: string, identity: SparseIdentity, ranges: ByteRange[]) {
  const tmp = `${sidecarPath(path)}.${Deno.pid}.tmp`; // rename: readers never see half a file
  await Deno.writeTextFile(tmp, JSON.stringify({ version: 1, ...identity, ranges }) + "\n");
  await Deno.rename(tmp, sidecarPath(path));
}
