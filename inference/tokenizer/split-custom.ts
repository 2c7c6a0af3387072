/**
 * Hand-written splitters for the two regexes llama.cpp never runs through a regex engine
 * (GPT-2's and Llama 3's). They must agree with llama.cpp's own hand-written versions, not
 * with a regex engine: e.g. `\s+(?!\S)` only ever looks inside the current segment.
 *
 * Both work on codepoints and on "segments" (lengths of the pieces an earlier split made),
 * returning the new segment lengths.
 */

import {
  cptFlags,
  FLAG_LETTER as LETTER,
  FLAG_NUMBER as NUMBER,
  FLAG_WHITESPACE as SPACE,
  toLower,
} from "./unicode.ts";

const OUT_OF_RANGE = -1;
const CR = 0x0d, LF = 0x0a, QUOTE = 0x27, BLANK = 0x20;

type Rule = (view: SegmentView, pos: number) => number;

/** One segment seen through llama.cpp's `_get_cpt` / `_get_flags`: nothing exists outside it. */
class SegmentView {
  constructor(readonly cpts: number[], readonly start: number, readonly end: number) {}
  cpt(pos: number): number {
    return pos >= this.start && pos < this.end ? this.cpts[pos] : OUT_OF_RANGE;
  }
  flags(pos: number): number {
    return pos >= this.start && pos < this.end ? cptFlags(this.cpts[pos]) : 0;
  }
}

function splitWith(cpts: number[], segments: number[], step: Rule): number[] {
  const out: number[] = [];
  let start = 0;
  for (const length of segments) {
    const view = new SegmentView(cpts, start, start + length);
    let prev = start;
    for (let pos = start; pos < view.end;) {
      pos = step(view, pos);
      if (pos > prev) out.push(pos - prev);
      prev = pos;
    }
    start += length;
  }
  return out;
}

/** `'s|'t|'re|'ve|'m|'ll|'d` (optionally case-insensitive): the end of the match, or -1. */
function contraction(view: SegmentView, pos: number, fold: boolean): number {
  if (view.cpt(pos) !== QUOTE || pos + 1 >= view.end) return -1;
  const low = (c: number) => (fold && c >= 0 ? toLower(c) : c);
  const a = low(view.cpt(pos + 1));
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return pos + 2; // s t m d
  if (pos + 2 < view.end) {
    const b = low(view.cpt(pos + 2));
    if ((a === 0x72 || a === 0x76) && b === 0x65) return pos + 3; // re ve
    if (a === 0x6c && b === 0x6c) return pos + 3; // ll
  }
  return -1;
}

function whitespaceRun(view: SegmentView, pos: number): { count: number; lastNewline: number } {
  let count = 0, lastNewline = 0;
  while (view.flags(pos + count) & SPACE) {
    const c = view.cpt(pos + count);
    if (c === CR || c === LF) lastNewline = pos + count + 1;
    count++;
  }
  return { count, lastNewline };
}

/** `\s+(?!\S)|\s+`: a run followed by more text leaves its last space to the next word. */
function trailingWhitespace(view: SegmentView, pos: number, count: number): number {
  if (count > 1 && view.cpt(pos + count) !== OUT_OF_RANGE) return pos + count - 1;
  return count > 0 ? pos + count : pos + 1;
}

const isOther = (f: number) => f !== 0 && !(f & (SPACE | LETTER | NUMBER));

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
const gpt2Step: Rule = (view, pos) => {
  const ctr = contraction(view, pos, false);
  if (ctr >= 0) return ctr;
  const cpt = view.cpt(pos);
  const lead = cpt === BLANK ? 1 : 0;
  const f = view.flags(pos + lead);
  for (const accept of [(x: number) => (x & LETTER) !== 0, (x: number) => (x & NUMBER) !== 0]) {
    if (accept(f)) {
      let p = pos + lead;
      while (accept(view.flags(p))) p++;
      return p;
    }
  }
  if (isOther(f)) {
    let p = pos + lead;
    while (isOther(view.flags(p))) p++;
    return p;
  }
  return trailingWhitespace(view, pos, whitespaceRun(view, pos).count);
};

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
// |\s*[\r\n]+|\s+(?!\S)|\s+
const llama3Step: Rule = (view, pos) => {
  const ctr = contraction(view, pos, true);
  if (ctr >= 0) return ctr;
  const cpt = view.cpt(pos);
  const flags = view.flags(pos);
  if (!(cpt === CR || cpt === LF || flags & NUMBER)) {
    if (flags & LETTER || view.flags(pos + 1) & LETTER) {
      let p = pos + 1;
      while (view.flags(p) & LETTER) p++;
      return p;
    }
  }
  if (flags & NUMBER) {
    let p = pos;
    while (view.flags(p) & NUMBER && p - pos < 3) p++;
    return p;
  }
  // llama.cpp tests the space's own flags here, so " " at a segment end still takes this path.
  const lead = cpt === BLANK ? 1 : 0;
  if (!(view.flags(pos + lead) & (SPACE | LETTER | NUMBER)) && flags !== 0) {
    let p = pos + lead;
    while (isOther(view.flags(p))) p++;
    while (view.cpt(p) === CR || view.cpt(p) === LF) p++;
    return p;
  }
  const run = whitespaceRun(view, pos);
  if (run.lastNewline > 0) return run.lastNewline;
  return trailingWhitespace(view, pos, run.count);
};

export function splitGpt2(cpts: number[], segments: number[]): number[] {
  return splitWith(cpts, segments, gpt2Step);
}

export function splitLlama3(cpts: number[], segments: number[]): number[] {
  return splitWith(cpts, segments, llama3Step);
}
