/**
 * A JSON Schema `pattern` (an ECMAScript regular expression, `u` flag) as the text between a JSON
 * string's quotes. The subset: literals and escapes, classes ([a-z], [^…], \d \w \s and their
 * negations), `.`, groups ((…), (?:…), (?<name>…)), alternation, the quantifiers * + ? {m}
 * {m,} {m,n} (lazy or not: the same language), and ^ $ at the ends. A pattern matches anywhere
 * in the string, so an end without its anchor may have any text. Each character becomes its
 * JSON spelling: `"` and `\` escaped, control characters as \n or \u00XX. Backreferences,
 * lookaround and \b are refused (GrammarError naming them).
 */
import {
  alt,
  type CodeRange,
  complementRanges,
  EMPTY,
  type Expr,
  GrammarError,
  lit,
  normaliseRanges,
  ref,
  rep,
  seq,
  set,
} from "./grammar.ts";

const DIGITS: CodeRange[] = [[0x30, 0x39]];
const WORD: CodeRange[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: CodeRange[] = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: CodeRange[] = [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]];
/** Characters JSON must escape (DEL too, as the string rule leaves it out). */
const ESCAPED: CodeRange[] = [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c], [0x7f, 0x7f]];
const SHORT_ESCAPES: Record<number, string> = {
  0x08: "\\b",
  0x09: "\\t",
  0x0a: "\\n",
  0x0c: "\\f",
  0x0d: "\\r",
  0x22: '\\"',
  0x5c: "\\\\",
};

function intersect(a: readonly CodeRange[], b: readonly CodeRange[]): CodeRange[] {
  const out: CodeRange[] = [];
  for (const [lo1, hi1] of a) {
    for (const [lo2, hi2] of b) {
      const lo = Math.max(lo1, lo2), hi = Math.min(hi1, hi2);
      if (lo <= hi) out.push([lo, hi]);
    }
  }
  return normaliseRanges(out);
}

/** One character of `ranges`, spelled as JSON spells it inside a string. */
export function jsonCharOf(ranges: readonly CodeRange[]): Expr {
  const parts: Expr[] = [];
  const raw = intersect(ranges, complementRanges(ESCAPED));
  if (raw.length > 0) parts.push(set(raw));
  for (const [lo, hi] of intersect(ranges, ESCAPED)) {
    for (let c = lo; c <= hi; c++) {
      parts.push(lit(SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, "0")}`));
    }
  }
  if (parts.length === 0) throw new GrammarError("pattern: a character class matches nothing");
  return alt(...parts);
}

const unsupported = (what: string): never => {
  throw new GrammarError(`pattern: ${what} is not supported`, `pattern: ${what}`);
};

/** The string's contents (between the quotes) that `pattern` matches. */
export function patternContent(pattern: string): Expr {
  try {
    new RegExp(pattern, "u");
  } catch (e) {
    throw new GrammarError(
      `pattern ${JSON.stringify(pattern)} is not valid: ${(e as Error).message}`,
    );
  }
  let pos = 0;
  const peek = () => pattern[pos];

  function codePoint(): number {
    const cp = pattern.codePointAt(pos)!;
    pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  function hex(n: number): number {
    const v = parseInt(pattern.slice(pos, pos + n), 16);
    pos += n;
    return v;
  }

  /** After a backslash: a class escape (as ranges) or one character. */
  function escape(inClass: boolean): CodeRange[] {
    const c = pattern[pos++];
    const one = (cp: number): CodeRange[] => [[cp, cp]];
    switch (c) {
      case "d":
        return DIGITS;
      case "D":
        return complementRanges(DIGITS);
      case "w":
        return WORD;
      case "W":
        return complementRanges(WORD);
      case "s":
        return SPACE;
      case "S":
        return complementRanges(SPACE);
      case "t":
        return one(9);
      case "n":
        return one(10);
      case "v":
        return one(11);
      case "f":
        return one(12);
      case "r":
        return one(13);
      case "0":
        return one(0);
      case "b":
        return inClass ? one(8) : unsupported("\\b (word boundary)");
      case "B":
        return unsupported("\\B (word boundary)");
      case "c":
        return one(pattern.charCodeAt(pos++) % 32);
      case "x":
        return one(hex(2));
      case "u": {
        if (peek() === "{") {
          const end = pattern.indexOf("}", pos);
          const cp = parseInt(pattern.slice(pos + 1, end), 16);
          pos = end + 1;
          return one(cp);
        }
        const hi = hex(4);
        if (hi >= 0xd800 && hi <= 0xdbff && pattern.slice(pos, pos + 2) === "\\u") {
          const save = pos;
          pos += 2;
          const lo = hex(4);
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            return one(0x10000 + ((hi - 0xd800) << 10) + lo - 0xdc00);
          }
          pos = save;
        }
        return one(hi);
      }
      case "p":
      case "P":
        return unsupported(`\\${c}{…} (Unicode properties)`);
      case "k":
        return unsupported("backreferences");
      default:
        if (/[1-9]/.test(c)) return unsupported("backreferences");
        pos--;
        return one(codePoint()); // an escaped syntax character: itself
    }
  }

  function charClass(): CodeRange[] {
    pos++; // [
    const negated = peek() === "^";
    if (negated) pos++;
    const ranges: CodeRange[] = [];
    const atom = (): CodeRange[] => {
      if (peek() === "\\") {
        pos++;
        return escape(true);
      }
      const cp = codePoint();
      return [[cp, cp]];
    };
    while (peek() !== "]") {
      const lo = atom();
      if (peek() === "-" && pattern[pos + 1] !== "]" && lo.length === 1 && lo[0][0] === lo[0][1]) {
        pos++;
        const hi = atom();
        ranges.push([lo[0][0], hi[0][1]]);
      } else ranges.push(...lo);
    }
    pos++;
    return negated ? complementRanges(ranges) : normaliseRanges(ranges);
  }

  function quantifier(e: Expr): Expr {
    let min: number, max: number;
    const c = peek();
    if (c === "*") [min, max] = [0, Infinity];
    else if (c === "+") [min, max] = [1, Infinity];
    else if (c === "?") [min, max] = [0, 1];
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(pos))!;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      pos += m[0].length - 1;
    } else return e;
    pos++;
    if (peek() === "?") pos++; // lazy: the same language
    return rep(e, min, max);
  }

  function term(): Expr {
    const c = peek();
    if (c === "(") {
      pos++;
      if (pattern.startsWith("?=", pos) || pattern.startsWith("?!", pos)) unsupported("lookahead");
      if (pattern.startsWith("?<=", pos) || pattern.startsWith("?<!", pos)) {
        unsupported("lookbehind");
      }
      if (pattern.startsWith("?:", pos)) pos += 2;
      else if (pattern.startsWith("?<", pos)) pos = pattern.indexOf(">", pos) + 1;
      const inner = disjunction(false);
      pos++; // )
      return inner;
    }
    if (c === "^" || c === "$") unsupported("an anchor (^ or $) inside the pattern");
    if (c === ".") {
      pos++;
      return jsonCharOf(complementRanges(LINE_TERMINATORS));
    }
    if (c === "[") return jsonCharOf(charClass());
    if (c === "\\") {
      pos++;
      return jsonCharOf(escape(false));
    }
    const cp = codePoint();
    return jsonCharOf([[cp, cp]]);
  }

  const ANY = rep(ref("json-char"), 0);

  function alternative(top: boolean): Expr {
    const items: Expr[] = [];
    let start = false, end = false;
    if (top && peek() === "^") pos++, start = true;
    while (pos < pattern.length && peek() !== "|" && peek() !== ")") {
      if (top && peek() === "$" && (pos + 1 === pattern.length || pattern[pos + 1] === "|")) {
        pos++;
        end = true;
        break;
      }
      items.push(quantifier(term()));
    }
    if (!top) return seq(EMPTY, ...items);
    return seq(start ? EMPTY : ANY, ...items, end ? EMPTY : ANY);
  }

  function disjunction(top: boolean): Expr {
    const items = [alternative(top)];
    while (peek() === "|") {
      pos++;
      items.push(alternative(top));
    }
    return alt(...items);
  }

  return disjunction(true);
}
