/// <reference lib="dom" />
/**
 * Markdown for model output: a pure parse (text → a small tree, unit-tested without a browser)
 * and a render that builds DOM nodes through dom.ts, text only. Model output shares an origin
 * with the node's controls, so raw HTML in it stays text, and links go only to http:, https: and
 * mailto:, in a new tab that cannot reach back (rel=noopener noreferrer). The chat re-renders a
 * message on every streamed chunk, so an unfinished fence or emphasis must parse too.
 */
import { el } from "./dom.ts";

export type Inline =
  | { type: "text"; text: string }
  | { type: "code"; text: string }
  | { type: "em" | "strong"; children: Inline[] }
  | { type: "link"; href: string; children: Inline[] }
  | { type: "break" };

export type Block =
  | { type: "paragraph"; children: Inline[] }
  | { type: "heading"; level: number; children: Inline[] }
  | { type: "code"; lang: string | null; text: string }
  | { type: "list"; ordered: boolean; start: number; items: Block[][] }
  | { type: "quote"; children: Block[] }
  | { type: "rule" };

const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The link's address when it is http(s) or mailto, normalised by URL; null for anything else. */
export function safeHref(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return null; // relative, or not a URL at all: nothing to resolve it against here
  }
  return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,})$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const BLANK = /^\s*$/;

export function parseMarkdown(text: string): Block[] {
  return parseBlocks(text.replace(/\r\n?/g, "\n").split("\n"));
}

function parseBlocks(lines: string[]): Block[] {
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK.test(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const body: string[] = [];
      i++;
      // An unclosed fence runs to the end: while streaming, the code so far.
      while (i < lines.length && !isClosingFence(lines[i], marker)) body.push(lines[i++]);
      i++;
      blocks.push({ type: "code", lang: fence[2] || null, text: body.join("\n") });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      blocks.push({
        type: "heading",
        level: heading[1].length,
        children: parseInline(heading[2] ?? ""),
      });
      i++;
      continue;
    }
    if (RULE.test(line)) {
      blocks.push({ type: "rule" });
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i])) inner.push(QUOTE.exec(lines[i++])![1]);
      blocks.push({ type: "quote", children: parseBlocks(inner) });
      continue;
    }
    if (ITEM.test(line)) {
      i = parseList(lines, i, blocks);
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && !BLANK.test(lines[i]) && !startsBlock(lines[i])) {
      para.push(lines[i++].trim());
    }
    blocks.push({ type: "paragraph", children: parseInline(para.join("\n")) });
  }
  return blocks;
}

function isClosingFence(line: string, marker: string): boolean {
  const t = line.trim();
  return t.length >= marker.length && t === marker[0].repeat(t.length);
}

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    ITEM.test(line);
}

/** One list from `lines[start]`: its items, each its own blocks (nested lists by indent). */
function parseList(lines: string[], start: number, out: Block[]): number {
  const first = ITEM.exec(lines[start])!;
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const items: Block[][] = [];
  let i = start;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const content = indent + m[2].length + 1;
    const body = [m[3]];
    i++;
    while (i < lines.length) {
      const next = lines[i];
      if (BLANK.test(next)) {
        // A blank line ends the list unless more of this item or a next item follows.
        const after = lines.slice(i + 1).find((l) => !BLANK.test(l));
        const more = after !== undefined &&
          (leading(after) >= content || sameList(after, indent, ordered));
        if (!more) break;
        body.push("");
        i++;
        continue;
      }
      const item = ITEM.exec(next);
      if (item && item[1].length <= indent) break;
      if (!item && leading(next) < content && startsBlock(next)) break;
      body.push(next.slice(Math.min(leading(next), content)));
      i++;
    }
    items.push(parseBlocks(body));
  }
  out.push({ type: "list", ordered, start: ordered ? parseInt(first[2], 10) : 1, items });
  return i;
}

function leading(line: string): number {
  return line.length - line.trimStart().length;
}

function sameList(line: string, indent: number, ordered: boolean): boolean {
  const m = ITEM.exec(line);
  return m !== null && m[1].length === indent && /\d/.test(m[2]) === ordered;
}

const ESCAPABLE = /[\\`*_{}[\]()#+\-.!<>~|"']/;
const AUTOLINK = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i;

/** Inline markup of one block's text; whatever does not parse stays as text. */
export function parseInline(src: string): Inline[] {
  const out: Inline[] = [];
  let text = "";
  const flush = () => {
    if (text !== "") out.push({ type: "text", text });
    text = "";
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "\\" && i + 1 < src.length && ESCAPABLE.test(src[i + 1])) {
      text += src[i + 1];
      i += 2;
      continue;
    }
    if (c === "\n") {
      flush();
      out.push({ type: "break" });
      i++;
      continue;
    }
    if (c === "`") {
      const span = codeSpan(src, i);
      if (span) {
        flush();
        out.push({ type: "code", text: span.text });
        i = span.end;
        continue;
      }
      const run = runLength(src, i, "`");
      text += src.slice(i, i + run);
      i += run;
      continue;
    }
    if (c === "[") {
      const link = linkAt(src, i);
      if (link) {
        const href = safeHref(link.url);
        if (href === null) {
          text += src.slice(i, link.end); // an unsafe link is shown as what the model wrote
        } else {
          flush();
          out.push({ type: "link", href, children: parseInline(link.label) });
        }
        i = link.end;
        continue;
      }
    }
    if (c === "<") {
      const auto = AUTOLINK.exec(src.slice(i));
      const href = auto && safeHref(auto[1]);
      if (auto && href) {
        flush();
        out.push({ type: "link", href, children: [{ type: "text", text: auto[1] }] });
        i += auto[0].length;
        continue;
      }
    }
    if (c === "*" || c === "_") {
      const em = emphasisAt(src, i);
      if (em) {
        flush();
        out.push(em.node);
        i = em.end;
        continue;
      }
      const run = runLength(src, i, c);
      text += src.slice(i, i + run);
      i += run;
      continue;
    }
    text += c;
    i++;
  }
  flush();
  return out;
}

function runLength(src: string, i: number, ch: string): number {
  let n = 0;
  while (src[i + n] === ch) n++;
  return n;
}

/** A code span opened by the backtick run at `i`, closed by a run of the same length. */
function codeSpan(src: string, i: number): { text: string; end: number } | null {
  const n = runLength(src, i, "`");
  let j = i + n;
  while (j < src.length) {
    const k = src.indexOf("`", j);
    if (k < 0) return null;
    const m = runLength(src, k, "`");
    if (m === n) {
      let text = src.slice(i + n, k).replace(/\n/g, " ");
      if (/^ .*[^ ].* $/.test(text)) text = text.slice(1, -1);
      return { text, end: k + m };
    }
    j = k + m;
  }
  return null;
}

/** `[label](url)` at `i`, brackets balanced; the url may hold balanced parentheses. */
function linkAt(src: string, i: number): { label: string; url: string; end: number } | null {
  let depth = 0;
  let j = i;
  for (; j < src.length; j++) {
    if (src[j] === "\\") j++;
    else if (src[j] === "[") depth++;
    else if (src[j] === "]" && --depth === 0) break;
  }
  if (j >= src.length || src[j + 1] !== "(") return null;
  const label = src.slice(i + 1, j);
  let k = j + 2;
  let parens = 1;
  for (; k < src.length; k++) {
    if (src[k] === "(") parens++;
    else if (src[k] === ")" && --parens === 0) break;
    else if (src[k] === "\n") return null;
  }
  if (k >= src.length) return null;
  // A title after the address (`(url "title")`) is dropped: the page shows no tooltips.
  const url = src.slice(j + 2, k).trim().replace(/\s+["'(].*$/, "").replace(/^<(.*)>$/, "$1");
  if (url === "" || /\s/.test(url)) return null;
  return { label, url, end: k + 1 };
}

/**
 * Emphasis opened at `i` by `*`/`_` (one: em, two: strong, three: both), closed by the same
 * run. An opener must touch text on its right, a closer on its left; `_` never opens or closes
 * inside a word (snake_case stays text). Code spans and escapes inside are skipped over when
 * looking for the closer, and a longer or shorter run of the same character is passed by, so
 * `*a **b** c*` nests.
 */
function emphasisAt(src: string, i: number): { node: Inline; end: number } | null {
  const ch = src[i];
  const run = runLength(src, i, ch);
  const n = Math.min(run, 3);
  if (run > 3) return null;
  const next = src[i + n];
  if (next === undefined || /\s/.test(next)) return null;
  if (ch === "_" && i > 0 && /[\p{L}\p{N}]/u.test(src[i - 1])) return null;
  let j = i + n;
  while (j < src.length) {
    const c = src[j];
    if (c === "\\") {
      j += 2;
      continue;
    }
    if (c === "`") {
      const span = codeSpan(src, j);
      j = span ? span.end : j + runLength(src, j, "`");
      continue;
    }
    if (c === "[") {
      const link = linkAt(src, j);
      if (link) {
        j = link.end;
        continue;
      }
    }
    if (c === ch) {
      const m = runLength(src, j, ch);
      const closes = m === n && !/\s/.test(src[j - 1]) &&
        !(ch === "_" && /[\p{L}\p{N}]/u.test(src[j + m] ?? ""));
      if (closes) {
        const inner = parseInline(src.slice(i + n, j));
        const node: Inline = n === 1
          ? { type: "em", children: inner }
          : n === 2
          ? { type: "strong", children: inner }
          : { type: "strong", children: [{ type: "em", children: inner }] };
        return { node, end: j + m };
      }
      // A nested run (say `**` inside `*…*`): its own closer comes later, so pass it whole.
      if (m !== n) {
        const nested = emphasisAt(src, j);
        j = nested ? nested.end : j + m;
        continue;
      }
      j += m;
      continue;
    }
    j++;
  }
  return null;
}

// ---- DOM ----

/** The nodes `text` renders to: text content only, links with the safe attributes. */
export function renderMarkdown(text: string): Node[] {
  return parseMarkdown(text).map(renderBlock);
}

function renderBlock(block: Block): Node {
  switch (block.type) {
    case "paragraph":
      return el("p", {}, ...block.children.map(renderInline));
    case "heading": {
      const tag = `h${Math.min(6, block.level + 2)}` as "h3" | "h4" | "h5" | "h6";
      return el(tag, {}, ...block.children.map(renderInline));
    }
    case "code":
      return el(
        "pre",
        {},
        el("code", block.lang ? { "data-lang": block.lang } : {}, block.text),
      );
    case "list": {
      const items = block.items.map((blocks) =>
        el(
          "li",
          {},
          // A one-paragraph item shows its text without a paragraph's margins.
          ...(blocks.length === 1 && blocks[0].type === "paragraph"
            ? blocks[0].children.map(renderInline)
            : blocks.map(renderBlock)),
        )
      );
      return block.ordered
        ? el("ol", block.start !== 1 ? { start: block.start } : {}, ...items)
        : el("ul", {}, ...items);
    }
    case "quote":
      return el("blockquote", {}, ...block.children.map(renderBlock));
    case "rule":
      return el("hr");
  }
}

function renderInline(node: Inline): Node {
  switch (node.type) {
    case "text":
      return document.createTextNode(node.text);
    case "code":
      return el("code", {}, node.text);
    case "em":
      return el("em", {}, ...node.children.map(renderInline));
    case "strong":
      return el("strong", {}, ...node.children.map(renderInline));
    case "link":
      return el(
        "a",
        { href: node.href, target: "_blank", rel: "noopener noreferrer" },
        ...node.children.map(renderInline),
      );
    case "break":
      return el("br");
  }
}
