import assert from "node:assert/strict";
import { type Block, type Inline, parseInline, parseMarkdown, safeHref } from "./markdown.ts";

const t = (text: string): Inline => ({ type: "text", text });
const para = (...children: Inline[]): Block => ({ type: "paragraph", children });

Deno.test("markdown: emphasis, strong, nesting, and what is no emphasis", () => {
  assert.deepEqual(parseInline("a **bold** b"), [
    t("a "),
    { type: "strong", children: [t("bold")] },
    t(" b"),
  ]);
  assert.deepEqual(parseInline("*a **b** c*"), [{
    type: "em",
    children: [t("a "), { type: "strong", children: [t("b")] }, t(" c")],
  }]);
  assert.deepEqual(parseInline("**a _b_**"), [{
    type: "strong",
    children: [t("a "), { type: "em", children: [t("b")] }],
  }]);
  assert.deepEqual(parseInline("***both***"), [{
    type: "strong",
    children: [{ type: "em", children: [t("both")] }],
  }]);
  assert.deepEqual(parseInline("2 * 3 * 4"), [t("2 * 3 * 4")], "spaced stars are arithmetic");
  assert.deepEqual(parseInline("snake_case_name"), [t("snake_case_name")]);
  assert.deepEqual(parseInline("**unclosed"), [t("**unclosed")], "a half-streamed opener is text");
  assert.deepEqual(parseInline("\\*not\\*"), [t("*not*")]);
});

Deno.test("markdown: code spans keep what they hold, stars included", () => {
  assert.deepEqual(parseInline("use `a*b*c` here"), [
    t("use "),
    { type: "code", text: "a*b*c" },
    t(" here"),
  ]);
  assert.deepEqual(parseInline("*x `*` y*"), [{
    type: "em",
    children: [t("x "), { type: "code", text: "*" }, t(" y")],
  }]);
  assert.deepEqual(parseInline("`` a`b ``"), [{ type: "code", text: "a`b" }]);
  assert.deepEqual(parseInline("`open"), [t("`open")]);
});

Deno.test("markdown: links only to http, https and mailto; anything else stays text", () => {
  assert.deepEqual(parseInline("[site](https://example.com/a?b=1)"), [
    { type: "link", href: "https://example.com/a?b=1", children: [t("site")] },
  ]);
  assert.deepEqual(parseInline("[**x**](mailto:a@b.c)"), [
    { type: "link", href: "mailto:a@b.c", children: [{ type: "strong", children: [t("x")] }] },
  ]);
  for (
    const bad of [
      "[x](javascript:alert(1))",
      "[x](JaVaScRiPt:alert(1))",
      "[x](java\tscript:alert(1))",
      "[x](data:text/html,<script>alert(1)</script>)",
      "[x](vbscript:msgbox)",
      "[x](/relative)",
    ]
  ) {
    const got = parseInline(bad);
    assert.ok(got.every((n) => n.type !== "link"), `${bad} → ${JSON.stringify(got)}`);
    assert.equal(got.map((n) => n.type === "text" ? n.text : "").join(""), bad);
  }
  assert.equal(safeHref(" https://x.org "), "https://x.org/");
  assert.equal(safeHref("javascript:alert(1)"), null);
  assert.deepEqual(parseInline("<https://x.org>"), [
    { type: "link", href: "https://x.org/", children: [t("https://x.org")] },
  ]);
});

Deno.test("markdown: raw HTML is text, never markup", () => {
  const src = '<img src=x onerror="alert(1)"> and <script>alert(2)</script>';
  assert.deepEqual(parseMarkdown(src), [para(t(src))]);
  assert.deepEqual(parseMarkdown("<b>hi</b>"), [para(t("<b>hi</b>"))]);
});

Deno.test("markdown: blocks (headings, fences, lists, quotes, rules, line breaks)", () => {
  const blocks = parseMarkdown([
    "# Title",
    "",
    "line one",
    "line two",
    "",
    "```ts",
    "const a = 1 * 2; // **not bold**",
    "```",
    "- one",
    "- two",
    "  - nested",
    "",
    "3. third",
    "4. fourth",
    "",
    "> quoted *em*",
    "---",
  ].join("\n"));
  assert.deepEqual(blocks, [
    { type: "heading", level: 1, children: [t("Title")] },
    para(t("line one"), { type: "break" }, t("line two")),
    { type: "code", lang: "ts", text: "const a = 1 * 2; // **not bold**" },
    {
      type: "list",
      ordered: false,
      start: 1,
      items: [
        [para(t("one"))],
        [para(t("two")), {
          type: "list",
          ordered: false,
          start: 1,
          items: [[para(t("nested"))]],
        }],
      ],
    },
    { type: "list", ordered: true, start: 3, items: [[para(t("third"))], [para(t("fourth"))]] },
    { type: "quote", children: [para(t("quoted "), { type: "em", children: [t("em")] })] },
    { type: "rule" },
  ]);
});

Deno.test("markdown: an unclosed fence (mid-stream) is code so far", () => {
  assert.deepEqual(parseMarkdown("intro\n```\nlet x = `*`"), [
    para(t("intro")),
    { type: "code", lang: null, text: "let x = `*`" },
  ]);
});
