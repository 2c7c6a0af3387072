/**
 * Numbers within bounds, as text. An integer range becomes, per digit count, the usual digit
 * trie of ranges (12–345: 1[2-9] | [2-9][0-9] | [1-2][0-9][0-9] | 3[0-3][0-9] | 34[0-5]).
 * A number (not integer) with bounds is split at its integer part I and fraction F: for
 * x in [a, b] with integer a, b it is I in [a, b-1] with any F, or I = b with F all zeros;
 * exclusive ends and negative values mirror that. Bounds that are not integers on a number,
 * and bounds beyond 16 digits, are refused (GrammarError) rather than approximated.
 */
import { alt, EMPTY, type Expr, GrammarError, lit, opt, rep, seq, set } from "./grammar.ts";
import { DIGIT } from "./json-primitives.ts";

/** Integers have at most this many digits (as llama.cpp's grammar); past it a bound is "none". */
const MAX_DIGITS = 16;
const LIMIT = 10 ** MAX_DIGITS - 1;

const digitRange = (lo: number, hi: number) => set([[0x30 + lo, 0x30 + hi]]);

/** Decimal strings of equal length from lo to hi (leading zeros allowed: a fixed width). */
function sameLength(lo: string, hi: string): Expr {
  if (lo.length === 0) return EMPTY;
  if (/^0*$/.test(lo) && /^9*$/.test(hi)) return rep(DIGIT, lo.length, lo.length);
  const a = Number(lo[0]), b = Number(hi[0]);
  if (lo.length === 1) return digitRange(a, b);
  const rest = lo.length - 1;
  if (a === b) return seq(lit(lo[0]), sameLength(lo.slice(1), hi.slice(1)));
  const parts = [seq(lit(lo[0]), sameLength(lo.slice(1), "9".repeat(rest)))];
  if (b - a >= 2) parts.push(seq(digitRange(a + 1, b - 1), rep(DIGIT, rest, rest)));
  parts.push(seq(lit(hi[0]), sameLength("0".repeat(rest), hi.slice(1))));
  return alt(...parts);
}

/** Non-negative integers lo..hi (hi may be Infinity) without leading zeros. */
export function unsignedRange(lo: number, hi: number): Expr {
  const top = Math.min(hi, LIMIT);
  const parts: Expr[] = [];
  for (let n = String(lo).length; n <= String(top).length; n++) {
    const from = Math.max(lo, n === 1 ? 0 : 10 ** (n - 1));
    const to = Math.min(top, 10 ** n - 1);
    if (from <= to) parts.push(sameLength(String(from), String(to)));
  }
  if (parts.length === 0) throw new GrammarError(`no integer lies between ${lo} and ${hi}`);
  return alt(...parts);
}

function checkBound(v: number, keyword: string) {
  if (Math.abs(v) > LIMIT && Number.isFinite(v)) {
    throw new GrammarError(
      `${keyword} ${v} has more than ${MAX_DIGITS} digits; such bounds are not supported`,
      keyword,
    );
  }
}

export interface Bounds {
  min: number; // -Infinity when none
  max: number; // Infinity when none
  minExclusive: boolean;
  maxExclusive: boolean;
}

/** Integers within the bounds, as text (a bound may be any number: it is rounded inwards). */
export function integerRange(b: Bounds): Expr {
  checkBound(b.min, "minimum");
  checkBound(b.max, "maximum");
  let lo = Math.ceil(b.min), hi = Math.floor(b.max);
  if (b.minExclusive && lo === b.min) lo++;
  if (b.maxExclusive && hi === b.max) hi--;
  if (lo > hi) {
    throw new GrammarError(`no integer lies within minimum ${b.min} and maximum ${b.max}`);
  }
  const parts: Expr[] = [];
  if (lo < 0) parts.push(seq(lit("-"), unsignedRange(Math.max(1, -hi), -lo)));
  if (hi >= 0) parts.push(unsignedRange(Math.max(0, lo), hi));
  return alt(...parts);
}

const FRACTION = seq(lit("."), rep(DIGIT, 1, 16));
const ZERO_FRACTION = opt(seq(lit("."), rep(lit("0"), 1, 16)));
const NONZERO_FRACTION = seq(lit("."), rep(lit("0"), 0, 7), set([[0x31, 0x39]]), rep(DIGIT, 0, 8));

/**
 * Magnitudes |x| from `a` to `b` (integers, b may be Infinity) as text: I.F with I the integer
 * part. An exclusive low end needs a nonzero fraction on I = a; an inclusive high end allows
 * only a zero fraction on I = b.
 */
function magnitude(a: number, aExclusive: boolean, b: number, bExclusive: boolean): Expr[] {
  if (a === b) return aExclusive || bExclusive ? [] : [seq(lit(String(a)), ZERO_FRACTION)];
  const parts: Expr[] = [];
  if (aExclusive) parts.push(seq(lit(String(a)), NONZERO_FRACTION));
  const from = aExclusive ? a + 1 : a, to = b - 1; // I with any fraction
  if (from <= to) parts.push(seq(unsignedRange(from, to), opt(FRACTION)));
  if (b !== Infinity && !bExclusive) parts.push(seq(lit(String(b)), ZERO_FRACTION));
  return parts;
}

/** Numbers within the bounds (integers, or none), as text; no exponent. */
export function numberRange(b: Bounds): Expr {
  for (const [v, keyword] of [[b.min, "minimum"], [b.max, "maximum"]] as const) {
    if (Number.isFinite(v) && !Number.isInteger(v)) {
      throw new GrammarError(
        `${keyword} ${v} on a number is not supported (only whole-number bounds)`,
        keyword,
      );
    }
    checkBound(v, keyword);
  }
  const parts: Expr[] = [];
  if (b.max > 0 || (b.max === 0 && !b.maxExclusive)) {
    const low = b.min >= 0 ? b.min : 0;
    parts.push(...magnitude(low, b.min >= 0 && b.minExclusive, b.max, b.maxExclusive));
  }
  if (b.min < 0) {
    // -x for magnitudes from (the upper bound, or just above 0) to |min|.
    const low = b.max < 0 ? -b.max : 0;
    const lowExclusive = b.max < 0 ? b.maxExclusive : true;
    const mags = magnitude(low, lowExclusive, -b.min, b.minExclusive);
    if (mags.length > 0) parts.push(seq(lit("-"), alt(...mags)));
  }
  if (parts.length === 0) {
    throw new GrammarError(`no number lies within minimum ${b.min} and maximum ${b.max}`);
  }
  return alt(...parts);
}
