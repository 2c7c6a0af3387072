/**
 * A grammar as the matcher runs it, and the expressions the front ends (GBNF, JSON Schema) build
 * it from. Like llama.cpp's: rules are alternatives of sequences, repetition is spelled out into
 * helper rules. Unlike it, the elements are byte ranges, not code points: a character class is
 * lowered (lower.ts) into the UTF-8 byte sequences of its code points, so the matcher steps
 * through a token's bytes one at a time, with no partial-character state, and byte-fallback
 * tokens that split a character are matched exactly.
 */

/** One element of a sequence: a byte in one of the ranges, or a rule. */
export type Element =
  | { bytes: number[] } // [lo, hi, lo, hi, …], inclusive
  | { ref: number };

/** Compiled rules: plain data (JSON-serialisable), so a grammar can travel and run elsewhere. */
export interface Grammar {
  /** rules[r]: its alternatives, each a sequence of elements. */
  rules: Element[][][];
  /** names[r]: the rule's name (helper rules get derived ones), for errors and debugging. */
  names: string[];
  root: number;
}

/** Something wrong with a grammar or a schema; `feature` names what is unsupported. */
export class GrammarError extends Error {
  override name = "GrammarError";
  constructor(
    message: string,
    readonly feature?: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
  }
}

/** A code point range, inclusive. */
export type CodeRange = readonly [number, number];

/** What the front ends build; lower.ts turns named expressions into a Grammar. */
export type Expr =
  | { k: "lit"; text: string } // these code points in order
  | { k: "set"; ranges: CodeRange[] } // one code point of the set (normalised: sorted, merged)
  | { k: "seq"; items: Expr[] }
  | { k: "alt"; items: Expr[] }
  | { k: "ref"; name: string }
  | { k: "rep"; item: Expr; min: number; max: number }; // max may be Infinity

export const MAX_CODE_POINT = 0x10ffff;
const SURROGATES: CodeRange = [0xd800, 0xdfff];

export const lit = (text: string): Expr => ({ k: "lit", text });
export const ref = (name: string): Expr => ({ k: "ref", name });
export const EMPTY: Expr = { k: "seq", items: [] };

export function seq(...items: Expr[]): Expr {
  const flat = items.flatMap((e) => e.k === "seq" ? e.items : [e]);
  return flat.length === 1 ? flat[0] : { k: "seq", items: flat };
}

export function alt(...items: Expr[]): Expr {
  const flat = items.flatMap((e) => e.k === "alt" ? e.items : [e]);
  return flat.length === 1 ? flat[0] : { k: "alt", items: flat };
}

export function rep(item: Expr, min: number, max = Infinity): Expr {
  if (max === 0) return EMPTY;
  if (min === 1 && max === 1) return item;
  return { k: "rep", item, min, max };
}

export const opt = (item: Expr): Expr => rep(item, 0, 1);

/** Sorted, merged, without surrogates (no UTF-8 encodes them). */
export function normaliseRanges(ranges: readonly CodeRange[]): CodeRange[] {
  const sorted = ranges.filter(([lo, hi]) => lo <= hi).map(([lo, hi]) => [lo, hi] as const)
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = merged.at(-1);
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  const out: CodeRange[] = [];
  for (const [lo, hi] of merged) {
    if (hi < SURROGATES[0] || lo > SURROGATES[1]) out.push([lo, hi]);
    else {
      if (lo < SURROGATES[0]) out.push([lo, SURROGATES[0] - 1]);
      if (hi > SURROGATES[1]) out.push([SURROGATES[1] + 1, hi]);
    }
  }
  return out;
}

/** The code points of all Unicode not in `ranges`. */
export function complementRanges(ranges: readonly CodeRange[]): CodeRange[] {
  const out: CodeRange[] = [];
  let next = 0;
  for (const [lo, hi] of normaliseRanges(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return normaliseRanges(out);
}

export function set(ranges: readonly CodeRange[], negated = false): Expr {
  return { k: "set", ranges: negated ? complementRanges(ranges) : normaliseRanges(ranges) };
}

/** A set of the characters of `chars` (e.g. "0123456789abcdef"). */
export function chars(text: string): Expr {
  return set([...text].map((c) => [c.codePointAt(0)!, c.codePointAt(0)!] as const));
}
