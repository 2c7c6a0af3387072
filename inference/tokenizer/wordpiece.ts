/**
 * WordPiece for BERT vocabularies as llama.cpp's `llm_tokenizer_wpm` does it: BERT-style
 * normalization (lowercase, accents dropped, punctuation and CJK as single-char words), then
 * greedy longest-match per word. llama.cpp's converter stores word-initial pieces with a ▁
 * prefix and continuation pieces without BERT's `##`, so each word is matched as "▁word".
 */

import {
  codepoints,
  cptFlags,
  FLAG_ACCENT_MARK,
  FLAG_CONTROL,
  FLAG_PUNCTUATION,
  FLAG_SYMBOL,
  FLAG_WHITESPACE,
  fromCodepoints,
  nfdFirst,
  toLower,
  utf8Length,
} from "./unicode.ts";
import type { Vocab } from "./vocab.ts";

function isChineseChar(c: number): boolean {
  return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) || // sic: as in HF's code
    (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

/** Normalizes text and splits it into words (lists of codepoints). */
export function wpmWords(vocab: Vocab, text: string): number[][] {
  let cpts = codepoints(text);
  if (vocab.stripAccents) cpts = cpts.map(nfdFirst);
  const words: number[][] = [[]];
  const last = () => words[words.length - 1];
  for (const cpt of cpts) {
    const flags = cptFlags(cpt);
    if (flags & FLAG_WHITESPACE) {
      if (last().length) words.push([]);
      continue;
    }
    if (cpt === 0 || cpt === 0xfffd || flags & FLAG_CONTROL) continue;
    if (vocab.stripAccents && flags & FLAG_ACCENT_MARK) continue;
    const c = vocab.lowercase ? toLower(cpt) : cpt;
    if (flags & FLAG_PUNCTUATION || (cpt < 0x7f && flags & FLAG_SYMBOL) || isChineseChar(cpt)) {
      if (last().length) words.push([]);
      words[words.length - 1] = [c];
      words.push([]);
    } else {
      last().push(c);
    }
  }
  if (last().length === 0) words.pop();
  return words;
}

export function wpmTokenize(vocab: Vocab, text: string, out: number[]): void {
  for (const word of wpmWords(vocab, text)) {
    const cps = [0x2581, ...word]; // phantom ▁ marks the word start
    const before = out.length;
    for (let i = 0; i < cps.length;) {
      let matched = 0;
      // Longest first; a token has at most maxTokenLength bytes, so longer pieces cannot match.
      for (let j = Math.min(cps.length, i + vocab.maxTokenLength); j > i; j--) {
        const piece = fromCodepoints(cps, i, j);
        if (utf8Length(piece) > vocab.maxTokenLength) continue;
        const id = vocab.textToId.get(piece);
        if (id !== undefined) {
          out.push(id);
          matched = j;
          break;
        }
      }
      if (!matched) {
        out.length = before; // the whole word becomes [UNK]
        break;
      }
      i = matched;
    }
    if (out.length === before && vocab.unk !== undefined) out.push(vocab.unk);
  }
}
