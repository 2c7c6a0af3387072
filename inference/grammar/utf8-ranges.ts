/**
 * A code point range as the UTF-8 byte sequences that encode exactly its code points: each
 * sequence a list of byte ranges, one per byte (the way regex engines build byte automata for
 * Unicode classes). [0x80, 0x7ff] is one sequence, [C2-DF][80-BF]; a range that does not fall
 * on those boundaries splits into several.
 */
import type { CodeRange } from "./grammar.ts";

const LENGTH_LIMITS = [0x7f, 0x7ff, 0xffff, 0x10ffff];

function encode(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [
    0xf0 | (cp >> 18),
    0x80 | ((cp >> 12) & 0x3f),
    0x80 | ((cp >> 6) & 0x3f),
    0x80 | (cp & 0x3f),
  ];
}

/** Byte sequences ([lo, hi] per byte) whose union is exactly the UTF-8 of `range`. */
export function utf8Sequences(range: CodeRange): [number, number][][] {
  const out: [number, number][][] = [];
  const todo: [number, number][] = [[range[0], range[1]]];
  while (todo.length > 0) {
    const [lo, hi] = todo.pop()!;
    if (lo > hi) continue;
    // One encoded length at a time.
    const limit = LENGTH_LIMITS.find((l) => lo <= l)!;
    if (hi > limit) {
      todo.push([limit + 1, hi], [lo, limit]);
      continue;
    }
    const n = encode(lo).length;
    // Split until every continuation byte below the first differing one spans 80–BF fully.
    let split = false;
    for (let i = 1; i < n && !split; i++) {
      const m = (1 << (6 * i)) - 1;
      if ((lo & ~m) === (hi & ~m)) continue;
      if ((lo & m) !== 0) {
        todo.push([(lo | m) + 1, hi], [lo, lo | m]);
        split = true;
      } else if ((hi & m) !== m) {
        todo.push([hi & ~m, hi], [lo, (hi & ~m) - 1]);
        split = true;
      }
    }
    if (split) continue;
    const a = encode(lo), b = encode(hi);
    out.push(a.map((x, i) => [x, b[i]]));
  }
  return out;
}
