// HTTP range requests for a model on a server: one Range GET, its redirects followed by hand.
import { DownloadError } from "./download.ts";
import type { ByteRange } from "./byte-ranges.ts";

const MAX_REDIRECTS = 5;

export interface RangeInit {
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export interface RangeReply {
  /** The last hop's answer; its body is the caller's to read or cancel. */
  response: Response;
  /** Every hop's headers, the first request's first. */
  hops: Headers[];
}

/**
 * GET `url` for the bytes [start, end). Redirects are followed here, not by fetch, so that each
 * hop's headers stay visible (Hugging Face names an LFS file's sha256 on its redirect to the
 * CDN) and an https URL never leads to plain http.
 */
export async function requestRange(
  url: string,
  [start, end]: ByteRange,
  init: RangeInit = {},
): Promise<RangeReply> {
  // identity: a compressed body would make Content-Range and the bytes count different things.
  const headers = { range: `bytes=${start}-${end - 1}`, "accept-encoding": "identity" };
  const hops: Headers[] = [];
  let at = url;
  for (let hop = 0;; hop++) {
    let response: Response;
    try {
      response = await (init.fetch ?? fetch)(at, {
        headers,
        redirect: "manual",
        signal: init.signal,
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new DownloadError("network", url, `cannot reach ${at}: ${errorText(err)}`, {
        cause: err,
      });
    }
    hops.push(response.headers);
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || location === null) {
      return { response, hops };
    }
    await response.body?.cancel();
    const next = new URL(location, at);
    if (new URL(at).protocol === "https:" && next.protocol !== "https:") {
      throw new DownloadError("http", url, `${at} redirects to ${next.href}, which is not https`);
    }
    if (hop === MAX_REDIRECTS) {
      throw new DownloadError("http", url, `${url}: more than ${MAX_REDIRECTS} redirects`);
    }
    at = next.href;
  }
}

export interface ContentRange {
  start: number;
  end: number; // exclusive
  total: number | undefined;
}

export function parseContentRange(header: string | null): ContentRange | undefined {
  const m = header?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
  if (!m) return undefined;
  const [start, last] = [Number(m[1]), Number(m[2])];
  if (last < start) return undefined;
  return { start, end: last + 1, total: m[3] === "*" ? undefined : Number(m[3]) };
}

/**
 * The sha256 a server states for the file: `x-linked-etag`, then `etag`, of the first hop, then
 * of the last (Hugging Face's ETag of an LFS file is its sha256; anything that is not 64 hex
 * digits, like a git blob's sha1, is no sha256).
 */
export function statedSha256(hops: readonly Headers[]): string | undefined {
  const order = hops.length > 1 ? [hops[0], hops[hops.length - 1]] : hops;
  for (const headers of order) {
    for (const name of ["x-linked-etag", "etag"]) {
      const value = headers.get(name)?.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
      if (value && /^[0-9a-f]{64}$/i.test(value)) return value.toLowerCase();
    }
  }
  return undefined;
}

export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}
