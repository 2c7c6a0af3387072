import assert from "node:assert/strict";
import { parseGbnf } from "./gbnf.ts";
import { GrammarError } from "./grammar.ts";
import { acceptsText } from "./matcher.ts";
import { utf8Sequences } from "./utf8-ranges.ts";

function check(gbnf: string, yes: string[], no: string[]) {
  const g = parseGbnf(gbnf);
  for (const t of yes) assert.ok(acceptsText(g, t), `should match ${JSON.stringify(t)}`);
  for (const t of no) assert.ok(!acceptsText(g, t), `should not match ${JSON.stringify(t)}`);
}

function refused(gbnf: string, message: RegExp, feature?: string) {
  assert.throws(() => parseGbnf(gbnf), (e) => {
    assert.ok(e instanceof GrammarError, `a GrammarError, got ${e}`);
    assert.match(e.message, message);
    if (feature) assert.equal(e.feature, feature);
    return true;
  });
}

Deno.test("gbnf: literals, classes, groups, alternatives and every repetition", () => {
  check(`root ::= "a" ("b" | "cd")* [x-z]?`, ["a", "ab", "acdbx", "az"], ["", "ac", "axx"]);
  check(`root ::= [0-9]+ "." [0-9]{2}`, ["1.23", "100.00"], [".23", "1.2", "1.234"]);
  check(`root ::= "x"{2,} "y"{,2} "z"{1,3}`, ["xxz", "xxxxyyzzz"], ["xz", "xxyyyz", "xxzzzz"]);
  check(`root ::= [^a-c\\n] .`, ["dé", "zz", "€x"], ["ax", "\nx", "d"]);
  check(`root ::= "\\x41\\u00e9\\U0001F600\\t\\"\\\\"`, ['Aé😀\t"\\'], ["Ae"]);
});

Deno.test("gbnf: rules refer to each other, recursion included; comments and line breaks", () => {
  const g = `
# balanced parentheses
root ::= pair+   # one or more
pair ::= "(" pair* ")"
`;
  check(g, ["()", "(())()", "((()))"], ["(", "())", ""]);
  // As in llama.cpp, a line break ends a rule outside parentheses, so a line may not start with |.
  refused(`root ::= "a"\n  | "b"`, /line 2, column 3: expected a rule name/);
  check(`root ::= ( "a"\n  | "b" )\n  `, ["a", "b"], ["ab"]);
  check(`root ::= "a" |\n  "b"`, ["a", "b"], []);
});

Deno.test("gbnf: UTF-8 is matched by bytes, so a character may arrive in parts", () => {
  check(`root ::= [α-ω]{2}`, ["αω", "βγ"], ["ab", "α"]);
  for (const [lo, hi] of [[0, 0x10ffff], [0x7f, 0x800], [0x7ff, 0x10000], [0xe000, 0x1f000]]) {
    const seqs = utf8Sequences([lo, hi]);
    for (let cp = Math.max(0, lo - 300); cp <= Math.min(0x10ffff, hi + 300); cp += 7) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const bytes = new TextEncoder().encode(String.fromCodePoint(cp));
      const hit = seqs.some((s) =>
        s.length === bytes.length && s.every(([a, b], i) => bytes[i] >= a && bytes[i] <= b)
      );
      assert.equal(hit, cp >= lo && cp <= hi, `U+${cp.toString(16)} in [${lo}, ${hi}]`);
    }
  }
});

Deno.test("gbnf: errors name the line and column", () => {
  refused(`root ::= "a"\nfoo ::= bar`, /line 2, column 9: undefined rule "bar"/);
  refused(`root ::= "a"\nfoo = "b"`, /line 2, column 5: expected "::="/);
  refused(`root ::= "abc`, /line 1, column 10: unterminated string literal/);
  refused(`root ::= [a-`, /line 1, column 10: unterminated character class/);
  refused(`root ::= ("a" "b"`, /line 1, column 18: expected "\)"/);
  refused(`root ::= "a"{3,1}`, /line 1, column 13: .*maximum below its minimum/);
  refused(`root ::= "\\q"`, /line 1, column 11: unknown escape \\q/);
  refused(`root ::= [z-a]`, /line 1, column 11: .*reversed/);
  refused(`root ::= "a"\nroot ::= "b"`, /line 2, column 1: rule "root" is defined twice/);
  refused(`item ::= "a"`, /no "root" rule/);
  refused(`root ::= <think> "a"`, /token references/, "token references");
  const e = (() => {
    try {
      parseGbnf(`root ::= "a"\n  x ::= y`);
      return undefined;
    } catch (err) {
      return err as GrammarError;
    }
  })();
  assert.equal(e?.line, 2);
  assert.equal(e?.column, 9);
});

Deno.test("gbnf: a left-recursive rule, or one with no finite match, is refused", () => {
  refused(`root ::= root "a" | "b"`, /"root" is left-recursive/, "left recursion");
  refused(`root ::= x\nx ::= y? x "a" | "b"\ny ::= "c"`, /"x" is left-recursive/);
  refused(`root ::= ("a"?)*`, /left-recursive/);
  refused(`root ::= "a" root`, /"root" matches no finite text/);
});

Deno.test("gbnf: the grammar is plain data that survives JSON", () => {
  const g = parseGbnf(`root ::= [a-zé]+ "!"`);
  const copy = JSON.parse(JSON.stringify(g));
  assert.deepEqual(copy, g);
  assert.ok(acceptsText(copy, "abé!"));
});
