// Sets of byte ranges [start, end) as sorted, disjoint, non-touching lists: what a partial
// model holds and what a stage still needs.
import type { ByteRange } from "../inference/mod.ts";

export type { ByteRange };

/** The ranges sorted, with overlapping or touching ones merged; empty ones dropped. */
export function normalizeRanges(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges.filter(([s, e]) => e > s).map(([s, e]): ByteRange => [s, e]);
  sorted.sort((a, b) => a[0] - b[0]);
  const out: ByteRange[] = [];
  for (const [s, e] of sorted) {
    const last = out.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** `want` minus `have`, normalized. */
export function missingRanges(want: readonly ByteRange[], have: readonly ByteRange[]): ByteRange[] {
  const holes = normalizeRanges(have);
  const out: ByteRange[] = [];
  for (const [start, end] of normalizeRanges(want)) {
    let at = start;
    for (const [hs, he] of holes) {
      if (he <= at) continue;
      if (hs >= end) break;
      if (hs > at) out.push([at, hs]);
      at = Math.max(at, he);
      if (at >= end) break;
    }
    if (at < end) out.push([at, end]);
  }
  return out;
}

/** Normalized, then ranges at most `gap` bytes apart joined (the gap is fetched as well). */
export function coalesceRanges(ranges: readonly ByteRange[], gap: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (const [s, e] of normalizeRanges(ranges)) {
    const last = out.at(-1);
    if (last && s - last[1] <= gap) last[1] = e;
    else out.push([s, e]);
  }
  return out;
}

export function rangeBytes(ranges: readonly ByteRange[]): number {
  return ranges.reduce((sum, [s, e]) => sum + (e - s), 0);
}

/** Where the range that starts at 0 ends: how much of the file's beginning is there. */
export function prefixEnd(ranges: readonly ByteRange[]): number {
  const first = normalizeRanges(ranges)[0];
  return first && first[0] === 0 ? first[1] : 0;
}

/** Ranges read from a file, or undefined unless they are integer ranges within [0, size]. */
export function parseRanges(data: unknown, size: number): ByteRange[] | undefined {
  if (!Array.isArray(data)) return undefined;
  const ok = data.every((r) =>
    Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) &&
    Number.isSafeInteger(r[1]) && 0 <= r[0] && r[0] <= r[1] && r[1] <= size
  );
  return ok ? normalizeRanges(data as ByteRange[]) : undefined;
}
