/**
 * Regex pre-tokenization as llama.cpp's `unicode_regex_split` does it: the regexes of a preset
 * run one after another, each splitting the pieces the previous one left (text between matches
 * stays a piece of its own).
 *
 * Regexes with `\p{..}` classes run, like in llama.cpp, on a "collapsed" copy of the text where
 * each non-ASCII codepoint becomes one byte naming its category; the class becomes that byte plus
 * the ASCII members. This reproduces llama.cpp's quirks (e.g. ASCII `~` is in no class), which a
 * Unicode-aware JS regex would not.
 */

import { splitGpt2, splitLlama3 } from "./split-custom.ts";
import {
  byteEncode,
  codepoints,
  cptFlags,
  FLAG_ACCENT_MARK,
  FLAG_LETTER,
  FLAG_NUMBER,
  FLAG_PUNCTUATION,
  FLAG_SYMBOL,
  FLAG_WHITESPACE,
  fromCodepoints,
} from "./unicode.ts";

export const GPT2_REGEX = String
  .raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const LLAMA3_REGEXES = [
  String
    .raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  String
    .raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
];

const VTAB = "\x0b"; // stands for any non-ASCII whitespace, as in llama.cpp

// Category byte and ASCII members that replace each `\p{..}` class in a collapsed regex.
const CATEGORY_CLASS: Record<string, { flag: number; byte: string; ascii: string }> = {
  N: { flag: FLAG_NUMBER, byte: "\xd1", ascii: "0-9" },
  L: { flag: FLAG_LETTER, byte: "\xd2", ascii: "A-Za-z" },
  P: { flag: FLAG_PUNCTUATION, byte: "\xd3", ascii: String.raw`!-#%-*,-/:-;?-@\[-\]_\{\}` },
  M: { flag: FLAG_ACCENT_MARK, byte: "\xd4", ascii: "" },
  S: { flag: FLAG_SYMBOL, byte: "\xd5", ascii: String.raw`\$\+<->^\x60\|` },
};
// llama.cpp folds the letter subcategories into \p{L}.
for (const sub of ["Lu", "Ll", "Lt", "Lm", "Lo"]) CATEGORY_CLASS[sub] = CATEGORY_CLASS.L;

type Splitter =
  | { kind: "custom"; split: (cpts: number[], segments: number[]) => number[] }
  | { kind: "collapsed" | "wide"; re: RegExp };

export interface PreTokenizer {
  /** Splits text into words, byte-encoded (GPT-2 style) when the preset asks for it. */
  split(text: string): string[];
}

function usesCategories(source: string): boolean {
  return /\\p\{(?:N|L|P|M|S|Lu|Ll|Lt|Lm|Lo)\}/.test(source);
}

/** Rewrites `\p{X}` into the collapsed byte plus ASCII members, inside or outside `[...]`. */
function collapseRegex(source: string): string {
  let out = "";
  let inside = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "[" && (i === 0 || source[i - 1] !== "\\")) {
      out += c;
      inside = true;
      continue;
    }
    if (inside && c === "]" && source[i - 1] !== "\\") {
      out += c;
      inside = false;
      continue;
    }
    const m = source.startsWith("\\p{", i) ? /^\\p\{(\w+)\}/.exec(source.slice(i)) : null;
    const cls = m ? CATEGORY_CLASS[m[1]] : undefined;
    if (m && cls) {
      out += inside ? cls.byte + cls.ascii : `[${cls.byte}${cls.ascii}]`;
      i += m[0].length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

function compile(source: string): Splitter {
  if (source === GPT2_REGEX) return { kind: "custom", split: splitGpt2 };
  if (LLAMA3_REGEXES.includes(source)) return { kind: "custom", split: splitLlama3 };
  if (usesCategories(source)) {
    if ([...source].some((ch) => ch.codePointAt(0)! > 0x7f)) {
      throw new Error(`pre-tokenizer regex mixes \\p{..} classes and non-ASCII text: ${source}`);
    }
    return { kind: "collapsed", re: new RegExp(collapseRegex(source), "g") };
  }
  return { kind: "wide", re: new RegExp(source, "gu") };
}

function collapsedChar(cpt: number): string {
  if (cpt < 128) return String.fromCharCode(cpt);
  const flags = cptFlags(cpt);
  if (flags & FLAG_WHITESPACE) return VTAB;
  for (const cls of Object.values(CATEGORY_CLASS)) {
    if (flags & cls.flag) return cls.byte;
  }
  return "\xd0";
}

/** Runs a global regex over each segment on its own, keeping unmatched text as pieces too. */
function splitByRegex(
  re: RegExp,
  segmentText: (start: number, length: number) => { text: string; toCpt: (unit: number) => number },
  segments: number[],
): number[] {
  const out: number[] = [];
  let start = 0;
  for (const length of segments) {
    const { text, toCpt } = segmentText(start, length);
    let done = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const at = toCpt(m.index);
      const end = toCpt(m.index + m[0].length);
      if (at > done) out.push(at - done);
      if (end > at) out.push(end - at);
      done = Math.max(done, end);
      if (m[0].length === 0) re.lastIndex = m.index + (text.codePointAt(m.index)! > 0xffff ? 2 : 1);
    }
    if (done < length) out.push(length - done);
    start += length;
  }
  return out;
}

export function createPreTokenizer(regexes: string[], byteLevel: boolean): PreTokenizer {
  const splitters = regexes.map(compile);
  const needCollapsed = splitters.some((s) => s.kind === "collapsed");
  return {
    split(text: string): string[] {
      const cpts = codepoints(text);
      const collapsed = needCollapsed ? cpts.map(collapsedChar).join("") : "";
      // Non-ASCII whitespace becomes \v so that `\s` means what it means in llama.cpp.
      const wide = cpts.map((c) => (c > 0x7f && cptFlags(c) & FLAG_WHITESPACE ? 0x0b : c));
      let segments = cpts.length > 0 ? [cpts.length] : [];
      for (const s of splitters) {
        if (s.kind === "custom") {
          segments = s.split(cpts, segments);
        } else if (s.kind === "collapsed") {
          segments = splitByRegex(s.re, (start, length) => ({
            text: collapsed.slice(start, start + length),
            toCpt: (unit) => unit,
          }), segments);
        } else {
          segments = splitByRegex(
            s.re,
            (start, length) => wideSegment(wide, start, length),
            segments,
          );
        }
      }
      const words: string[] = [];
      let at = 0;
      for (const length of segments) {
        const word = fromCodepoints(cpts, at, at + length);
        words.push(byteLevel ? byteEncode(word) : word);
        at += length;
      }
      return words;
    },
  };
}

function wideSegment(wide: number[], start: number, length: number) {
  const cps = wide.slice(start, start + length);
  // unitToCpt[u] = number of codepoints before UTF-16 unit u
  const unitToCpt: number[] = [];
  cps.forEach((c, i) => {
    unitToCpt.push(i);
    if (c > 0xffff) unitToCpt.push(i + 1);
  });
  unitToCpt.push(cps.length);
  return { text: fromCodepoints(cps), toCpt: (unit: number) => unitToCpt[unit] };
}
