/**
 * Named expressions → a Grammar: literals become byte sequences, code point sets their UTF-8
 * byte sequences (one element when all are ASCII), nested alternatives and repetitions helper
 * rules (x{2,4} is x x (x (x)?)?, x* is r ::= x r | ε, as llama.cpp spells them). Identical
 * helpers are made once. The result is checked (analyse.ts) before it is returned.
 */
import { checkGrammar } from "./analyse.ts";
import { type Element, type Expr, type Grammar, GrammarError } from "./grammar.ts";
import { utf8Sequences } from "./utf8-ranges.ts";

/** Past this many rules a grammar is refused (a {m,n} bound in the thousands, say). */
export const MAX_RULES = 50_000;
/** Past this many elements in all rules together, likewise. */
export const MAX_ELEMENTS = 500_000;

const encoder = new TextEncoder();

export function buildGrammar(named: ReadonlyMap<string, Expr>, rootName = "root"): Grammar {
  const rules: Element[][][] = [], names: string[] = [];
  const ids = new Map<string, number>();
  const helpers = new Map<string, number>();
  let elements = 0;
  for (const name of named.keys()) {
    ids.set(name, rules.length);
    rules.push([]);
    names.push(name);
  }
  const root = ids.get(rootName);
  if (root === undefined) throw new GrammarError(`the grammar has no "${rootName}" rule`);

  function newRule(name: string): number {
    if (rules.length >= MAX_RULES) {
      throw new GrammarError(`the grammar needs more than ${MAX_RULES} rules`, "size");
    }
    rules.push([]);
    names.push(name);
    return rules.length - 1;
  }

  /** A helper rule for `e` (its alternatives), made once per distinct expression. */
  function helper(e: Expr, name: string, body: () => Element[][]): number {
    const key = JSON.stringify(e);
    const known = helpers.get(key);
    if (known !== undefined) return known;
    const id = newRule(name);
    helpers.set(key, id);
    rules[id] = body();
    return id;
  }

  function count(n: number) {
    elements += n;
    if (elements > MAX_ELEMENTS) {
      throw new GrammarError(`the grammar needs more than ${MAX_ELEMENTS} elements`, "size");
    }
  }

  function alternatives(e: Expr, owner: string): Element[][] {
    return e.k === "alt" ? e.items.map((x) => sequence(x, owner)) : [sequence(e, owner)];
  }

  function sequence(e: Expr, owner: string, out: Element[] = []): Element[] {
    switch (e.k) {
      case "lit":
        count(e.text.length);
        for (const b of encoder.encode(e.text)) out.push({ bytes: [b, b] });
        break;
      case "set":
        out.push(setElement(e, owner));
        break;
      case "seq":
        for (const x of e.items) sequence(x, owner, out);
        break;
      case "alt":
        if (e.items.length === 1) sequence(e.items[0], owner, out);
        else out.push({ ref: helper(e, `${owner}-alt`, () => alternatives(e, owner)) });
        break;
      case "ref": {
        const id = ids.get(e.name);
        if (id === undefined) throw new GrammarError(`undefined rule "${e.name}" in "${owner}"`);
        out.push({ ref: id });
        break;
      }
      case "rep":
        repetition(e, owner, out);
        break;
    }
    count(1);
    return out;
  }

  function setElement(e: Expr & { k: "set" }, owner: string): Element {
    if (e.ranges.length === 0) throw new GrammarError(`an empty character class in "${owner}"`);
    if (e.ranges.every(([, hi]) => hi < 0x80)) return { bytes: e.ranges.flat() };
    return {
      ref: helper(e, `${owner}-char`, () => {
        const ascii: number[] = [];
        const alts: Element[][] = [];
        for (const range of e.ranges) {
          for (const bytes of utf8Sequences(range)) {
            if (bytes.length === 1) ascii.push(...bytes[0]);
            else alts.push(bytes.map((r) => ({ bytes: r })));
          }
        }
        count(alts.length * 3);
        return ascii.length > 0 ? [[{ bytes: ascii }], ...alts] : alts;
      }),
    };
  }

  /** One element standing for `item` (its own rule unless it already is one element). */
  function unit(item: Expr, owner: string): Element {
    const els = sequence(item, owner);
    if (els.length === 1) return els[0];
    return { ref: helper(item, `${owner}-item`, () => [els]) };
  }

  function repetition(e: Expr & { k: "rep" }, owner: string, out: Element[]) {
    const { min, max } = e;
    if (!(Number.isInteger(min) && min >= 0 && (max === Infinity || Number.isInteger(max)))) {
      throw new GrammarError(`a bad repetition {${min},${max}} in "${owner}"`);
    }
    if (max < min) throw new GrammarError(`a repetition {${min},${max}} with max below min`);
    if (min > MAX_RULES || (max !== Infinity && max - min > MAX_RULES)) {
      throw new GrammarError(`a repetition {${min},${max}} is too long`, "size");
    }
    const x = unit(e.item, owner);
    count(min);
    for (let i = 0; i < min; i++) out.push(x);
    if (max === Infinity) {
      const key: Expr = { k: "rep", item: e.item, min: 0, max: Infinity };
      const star = helper(key, `${owner}-star`, () => []);
      rules[star] = [[x, { ref: star }], []];
      out.push({ ref: star });
      return;
    }
    let inner: number | undefined;
    for (let k = 1; k <= max - min; k++) {
      const key: Expr = { k: "rep", item: e.item, min: 0, max: k };
      const tail = inner;
      inner = helper(
        key,
        `${owner}-upto${k}`,
        () => [tail === undefined ? [x] : [x, { ref: tail }], []],
      );
    }
    if (inner !== undefined) out.push({ ref: inner });
  }

  for (const [name, e] of named) rules[ids.get(name)!] = alternatives(e, name);
  const grammar: Grammar = { rules, names, root };
  checkGrammar(grammar);
  return grammar;
}
