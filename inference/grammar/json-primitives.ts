/**
 * JSON's building blocks as grammar rules, llama.cpp's choices: whitespace is none, one space,
 * or a line break and up to 20 indent characters (bounded, so a weak model cannot loop in it);
 * numbers have at most 16 integer and 16 fraction digits; string escapes leave out lone
 * surrogates (\ud800), whose length a validator counts differently. `jsonObjectGrammar` is any
 * JSON object (response_format json_object).
 */
import { buildGrammar } from "./lower.ts";
import { alt, chars, type Expr, type Grammar, lit, opt, ref, rep, seq, set } from "./grammar.ts";

export const DIGIT = set([[0x30, 0x39]]);
const HEX = chars("0123456789abcdefABCDEF");

/** Rules every JSON grammar may use, by name. */
export const PRIMITIVES: Record<string, Expr> = {
  space: opt(alt(lit(" "), seq(lit("\n"), rep(chars(" \t"), 0, 20)))),
  "json-char": alt(
    // Printable characters but " and \; DEL too, as llama.cpp leaves it out.
    set([[0x22, 0x22], [0x5c, 0x5c], [0, 0x1f], [0x7f, 0x7f]], true),
    seq(
      lit("\\"),
      alt(
        chars('"\\/bfnrt'),
        seq(
          lit("u"),
          alt(
            seq(chars("0123456789abcABCefEF"), HEX, HEX, HEX),
            seq(chars("dD"), chars("01234567"), HEX, HEX),
          ),
        ),
      ),
    ),
  ),
  "json-string": seq(lit('"'), rep(ref("json-char"), 0), lit('"'), ref("space")),
  "json-integral": alt(lit("0"), seq(set([[0x31, 0x39]]), rep(DIGIT, 0, 15))),
  "json-integer": seq(opt(lit("-")), ref("json-integral"), ref("space")),
  "json-number": seq(
    opt(lit("-")),
    ref("json-integral"),
    opt(seq(lit("."), rep(DIGIT, 1, 16))),
    opt(seq(chars("eE"), opt(chars("-+")), rep(DIGIT, 1, 2))),
    ref("space"),
  ),
  "json-boolean": seq(alt(lit("true"), lit("false")), ref("space")),
  "json-null": seq(lit("null"), ref("space")),
  "json-value": alt(
    ref("json-object"),
    ref("json-array"),
    ref("json-string"),
    ref("json-number"),
    ref("json-boolean"),
    ref("json-null"),
  ),
  "json-member": seq(ref("json-string"), lit(":"), ref("space"), ref("json-value")),
  "json-object": seq(
    lit("{"),
    ref("space"),
    opt(seq(ref("json-member"), rep(seq(lit(","), ref("space"), ref("json-member")), 0))),
    lit("}"),
    ref("space"),
  ),
  "json-array": seq(
    lit("["),
    ref("space"),
    opt(seq(ref("json-value"), rep(seq(lit(","), ref("space"), ref("json-value")), 0))),
    lit("]"),
    ref("space"),
  ),
};

/** The primitives `root` needs, added to `rules` (transitively). */
export function withPrimitives(rules: Map<string, Expr>): Map<string, Expr> {
  const todo = [...rules.values()];
  while (todo.length > 0) {
    const e = todo.pop()!;
    forEachRef(e, (name) => {
      if (!rules.has(name) && name in PRIMITIVES) {
        rules.set(name, PRIMITIVES[name]);
        todo.push(PRIMITIVES[name]);
      }
    });
  }
  return rules;
}

function forEachRef(e: Expr, f: (name: string) => void) {
  if (e.k === "ref") f(e.name);
  else if (e.k === "seq" || e.k === "alt") { for (const x of e.items) forEachRef(x, f); }
  else if (e.k === "rep") forEachRef(e.item, f);
}

/** Any JSON object: what response_format json_object asks for. */
export function jsonObjectGrammar(): Grammar {
  return buildGrammar(withPrimitives(new Map([["root", ref("json-object")]])));
}

const two = (lo: string, hi: string) => seq(chars(lo), chars(hi));
const D28 = alt(seq(lit("0"), set([[0x31, 0x39]])), seq(lit("1"), DIGIT), two("2", "012345678"));
const D30 = alt(D28, lit("29"), lit("30"));
const D31 = alt(D30, lit("31"));
const HOUR = alt(seq(chars("01"), DIGIT), seq(lit("2"), chars("0123")));
const MINUTE = seq(chars("012345"), DIGIT);

/**
 * String formats as their text (inside the quotes). Dates leave out February 29th, so every
 * date the grammar allows exists, leap year or not.
 */
export const FORMATS: Record<string, Expr> = {
  date: seq(
    rep(DIGIT, 4, 4),
    lit("-"),
    alt(
      seq(alt(seq(lit("0"), chars("13578")), seq(lit("1"), chars("02"))), lit("-"), D31),
      seq(alt(seq(lit("0"), chars("469")), lit("11")), lit("-"), D30),
      seq(lit("02-"), D28),
    ),
  ),
  time: seq(
    HOUR,
    lit(":"),
    MINUTE,
    lit(":"),
    MINUTE,
    opt(seq(lit("."), rep(DIGIT, 1, 3))),
    alt(lit("Z"), seq(chars("+-"), HOUR, lit(":"), MINUTE)),
  ),
  uuid: seq(
    rep(HEX, 8, 8),
    lit("-"),
    rep(HEX, 4, 4),
    lit("-"),
    rep(HEX, 4, 4),
    lit("-"),
    rep(HEX, 4, 4),
    lit("-"),
    rep(HEX, 12, 12),
  ),
};
FORMATS["date-time"] = seq(FORMATS.date, lit("T"), FORMATS.time);
