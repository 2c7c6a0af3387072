/**
 * llama.cpp's GBNF: `name ::= alternatives` rules, "literals", [character classes] (with ^ and
 * ranges), `.`, ( groups ), rule references, and the repetitions * + ? {m} {m,} {m,n} {,n};
 * `#` comments. A rule ends at a line break unless inside parentheses or after `|` or `::=`.
 * The entry is the rule `root`. Errors name the line and column.
 */
import { buildGrammar } from "./lower.ts";
import {
  alt,
  type CodeRange,
  EMPTY,
  type Expr,
  type Grammar,
  GrammarError,
  lit,
  MAX_CODE_POINT,
  ref,
  rep,
  seq,
  set,
} from "./grammar.ts";

export function parseGbnf(text: string): Grammar {
  const rules = new Map<string, Expr>();
  const refs: { name: string; at: number }[] = [];
  let pos = 0;

  function fail(message: string, at = pos): never {
    const before = text.slice(0, at);
    const line = before.split("\n").length;
    const column = at - before.lastIndexOf("\n");
    throw new GrammarError(
      `GBNF line ${line}, column ${column}: ${message}`,
      undefined,
      line,
      column,
    );
  }

  const peek = () => text[pos];
  const isNameChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_-]/.test(c);

  function space(newlines: boolean) {
    while (pos < text.length) {
      const c = text[pos];
      if (c === " " || c === "\t") pos++;
      else if (c === "#") { while (pos < text.length && text[pos] !== "\n") pos++; }
      else if (newlines && (c === "\n" || c === "\r")) pos++;
      else break;
    }
  }

  function name(): string {
    const start = pos;
    while (isNameChar(peek())) pos++;
    if (pos === start) fail(`expected a rule name, found ${describe(peek())}`);
    return text.slice(start, pos);
  }

  function hex(digits: number): number {
    const s = text.slice(pos, pos + digits);
    if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(s)) fail(`expected ${digits} hex digits`);
    pos += digits;
    return parseInt(s, 16);
  }

  /** One character of a literal or class, escapes decoded, as a code point. */
  function char(): number {
    if (pos >= text.length) fail("unexpected end of the grammar");
    if (text[pos] !== "\\") {
      const cp = text.codePointAt(pos)!;
      pos += cp > 0xffff ? 2 : 1;
      return cp;
    }
    pos++;
    const c = text[pos++];
    const simple: Record<string, number> = {
      n: 10,
      r: 13,
      t: 9,
      "\\": 92,
      '"': 34,
      "[": 91,
      "]": 93,
      "-": 45,
      "/": 47,
    };
    if (c in simple) return simple[c];
    if (c === "x") return hex(2);
    if (c === "u") return hex(4);
    if (c === "U") {
      const cp = hex(8);
      if (cp > MAX_CODE_POINT) fail(`\\U${cp.toString(16)} is beyond Unicode`, pos - 8);
      return cp;
    }
    return fail(`unknown escape \\${c ?? ""}`, pos - 2);
  }

  function literal(): Expr {
    const start = pos++;
    let s = "";
    while (peek() !== '"') {
      if (pos >= text.length || peek() === "\n") fail("unterminated string literal", start);
      s += String.fromCodePoint(char());
    }
    pos++;
    return lit(s);
  }

  function charClass(): Expr {
    const start = pos++;
    const negated = peek() === "^";
    if (negated) pos++;
    const ranges: CodeRange[] = [];
    while (peek() !== "]") {
      if (pos >= text.length || peek() === "\n") fail("unterminated character class", start);
      const at = pos;
      const lo = char();
      let hi = lo;
      if (peek() === "-" && text[pos + 1] !== "]" && pos + 1 < text.length) {
        pos++;
        hi = char();
        if (hi < lo) fail(`character range ${describeCp(lo)}-${describeCp(hi)} is reversed`, at);
      }
      ranges.push([lo, hi]);
    }
    pos++;
    return set(ranges, negated);
  }

  function count(): number {
    const start = pos;
    while (/[0-9]/.test(peek() ?? "")) pos++;
    if (pos === start) fail("expected a number");
    return Number(text.slice(start, pos));
  }

  function quantified(e: Expr): Expr {
    const c = peek();
    if (c === "*") return pos++, rep(e, 0);
    if (c === "+") return pos++, rep(e, 1);
    if (c === "?") return pos++, rep(e, 0, 1);
    if (c !== "{") return e;
    const at = pos++;
    space(false);
    const min = peek() === "," ? 0 : count();
    space(false);
    let max = min;
    if (peek() === ",") {
      pos++;
      space(false);
      max = peek() === "}" ? Infinity : count();
      space(false);
    }
    if (peek() !== "}") fail(`expected "}" to close the repetition`);
    pos++;
    if (max < min) fail(`repetition {${min},${max}} has its maximum below its minimum`, at);
    return rep(e, min, max);
  }

  function sequence(nested: boolean): Expr {
    const items: Expr[] = [];
    while (pos < text.length) {
      const c = peek();
      let e: Expr;
      if (c === '"') e = literal();
      else if (c === "[") e = charClass();
      else if (c === ".") {
        pos++;
        e = set([[0, MAX_CODE_POINT]]);
      } else if (c === "(") {
        pos++;
        space(true);
        e = alternatives(true);
        if (peek() !== ")") fail(`expected ")" to close the group, found ${describe(peek())}`);
        pos++;
      } else if (isNameChar(c)) {
        const at = pos;
        const n = name();
        refs.push({ name: n, at });
        e = ref(n);
      } else if (c === "<") {
        throw new GrammarError(
          `GBNF: token references (<…>) are not supported`,
          "token references",
        );
      } else break;
      items.push(quantified(e));
      space(nested);
    }
    return items.length === 0 ? EMPTY : seq(...items);
  }

  function alternatives(nested: boolean): Expr {
    const items = [sequence(nested)];
    while (peek() === "|") {
      pos++;
      space(true);
      items.push(sequence(nested));
    }
    return items.length === 1 ? items[0] : alt(...items);
  }

  space(true);
  while (pos < text.length) {
    const at = pos;
    const n = name();
    space(false);
    if (text.slice(pos, pos + 3) !== "::=") fail(`expected "::=" after rule name "${n}"`);
    pos += 3;
    space(true);
    const body = alternatives(false);
    if (pos < text.length && peek() !== "\n" && peek() !== "\r") {
      fail(`unexpected ${describe(peek())} in rule "${n}"`);
    }
    if (rules.has(n)) fail(`rule "${n}" is defined twice`, at);
    rules.set(n, body);
    space(true);
  }
  if (!rules.has("root")) throw new GrammarError(`the grammar has no "root" rule`);
  for (const r of refs) if (!rules.has(r.name)) fail(`undefined rule "${r.name}"`, r.at);
  // The root first, so rule 0 is the entry when the grammar is printed.
  const ordered = new Map([["root", rules.get("root")!], ...rules]);
  return buildGrammar(ordered);
}

function describe(c: string | undefined): string {
  return c === undefined ? "the end" : c === "\n" ? "a line break" : JSON.stringify(c);
}

function describeCp(cp: number): string {
  return JSON.stringify(String.fromCodePoint(cp));
}
