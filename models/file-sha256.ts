// A model file's SHA-256, its identity in the mesh: split candidates of one model find each other
// by it (docs/protocol.md#planning). Hashing a multi-GB GGUF takes seconds to minutes, so the hash
// is kept in the same store resolveModel keeps checked files in ($GROVE_HOME/models/hashes.json,
// keyed by absolute path, size and mtime): a restart, or a file resolveModel just checked, is not
// read again.
import { createHash } from "node:crypto";
import { join, resolve as resolvePath } from "node:path";
import { hashStorePath, readHashStore, recordModelFile } from "./download.ts";
import { expandHome, type ResolvedModel } from "./resolve.ts";

export interface HashProgress {
  path: string;
  hashed: number; // bytes read so far
  total: number; // the file's size
  done: boolean;
}

export interface FileSha256Options {
  /** Folder of the hash store; default $GROVE_HOME/models (else ~/.grove/models), as resolveModel's. */
  cacheDir?: string;
  /** Called while a file is read, never on a cached answer. */
  onProgress?: (progress: HashProgress) => void;
}

// Big enough that a fast disk is the limit, small enough to never matter beside a model.
const CHUNK = 1 << 20;

/** The file's SHA-256 as lowercase hex, from the store when its size and mtime are unchanged. */
export async function fileSha256(path: string, options: FileSha256Options = {}): Promise<string> {
  const absolute = resolvePath(expandHome(path));
  const storePath = hashStorePath(options.cacheDir ?? defaultCacheDir());
  const before = await Deno.stat(absolute);
  if (!before.isFile) throw new Error(`${absolute} is not a file`);
  const seen = (await readHashStore(storePath)).verified[absolute];
  if (seen && seen.size === before.size && seen.mtimeMs === mtimeOf(before)) return seen.sha256;

  const sha256 = await hashStream(absolute, before.size, options.onProgress);
  const after = await Deno.stat(absolute);
  // A file written to while it was read has no one hash worth keeping.
  if (after.size === before.size && mtimeOf(after) === mtimeOf(before)) {
    // An expected hash equal to the one found: recorded as checked, never trusted for a URL.
    await recordModelFile(
      absolute,
      { name: absolute, url: "", sha256, size: after.size },
      sha256,
      storePath,
    );
  }
  return sha256;
}

/**
 * The SHA-256 of a model resolveModel found. A catalog model with a recorded hash was checked
 * against it before resolveModel returned (found on disk or downloaded), so that hash is the
 * file's; any other model (a path, an hf:// file, a catalog entry without a hash) is hashed.
 */
export function modelSha256(
  resolved: Pick<ResolvedModel, "path" | "entry">,
  options: FileSha256Options = {},
): Promise<string> {
  const known = resolved.entry?.sha256;
  return known ? Promise.resolve(known) : fileSha256(resolved.path, options);
}

async function hashStream(
  path: string,
  total: number,
  onProgress: FileSha256Options["onProgress"],
): Promise<string> {
  const hash = createHash("sha256");
  const buf = new Uint8Array(CHUNK);
  let hashed = 0;
  const file = await Deno.open(path, { read: true });
  try {
    for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
      hash.update(buf.subarray(0, n));
      hashed += n;
      onProgress?.({ path, hashed, total, done: false });
    }
  } finally {
    file.close();
  }
  onProgress?.({ path, hashed, total, done: true });
  return hash.digest("hex");
}

function mtimeOf(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? 0;
}

function defaultCacheDir(): string {
  let home: string | undefined;
  try {
    home = Deno.env.get("GROVE_HOME") || undefined;
  } catch {
    // no --allow-env: behave as if unset, as resolveModel does
  }
  return join(expandHome(home ?? "~/.grove"), "models");
}
