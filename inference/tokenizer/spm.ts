/**
 * SentencePiece-style BPE as llama.cpp's `llm_tokenizer_spm` runs it: start from single
 * codepoints, repeatedly merge the adjacent pair whose joined text is the highest-scoring
 * token (leftmost on ties), then emit each piece's token or, failing that, its bytes as
 * `<0xXX>` tokens.
 */

import { Heap } from "./heap.ts";
import { utf8 } from "./unicode.ts";
import type { Vocab } from "./vocab.ts";

interface Bigram {
  left: number;
  right: number;
  score: number;
  /** Length of the joined text when the pair was queued; a mismatch later means it is stale. */
  size: number;
}

interface SymbolSpan {
  start: number; // UTF-16 offset into the text
  length: number; // 0 once merged into its left neighbour
  prev: number;
  next: number;
}

const higherScoreFirst = (a: Bigram, b: Bigram) =>
  a.score > b.score || (a.score === b.score && a.left < b.left);

/** The id of `<0xXX>` (or of the one-char token) for a byte; unknown if the vocab has neither. */
export function byteToken(vocab: Vocab, byte: number): number | undefined {
  const hex = byte.toString(16).toUpperCase().padStart(2, "0");
  return vocab.textToId.get(`<0x${hex}>`) ??
    (byte < 0x80 ? vocab.textToId.get(String.fromCharCode(byte)) : undefined) ?? vocab.unk;
}

/** Tokenizes text whose spaces are already escaped to ▁, appending ids to `out`. */
export function spmTokenize(vocab: Vocab, text: string, out: number[]): void {
  const symbols: SymbolSpan[] = [];
  for (let at = 0; at < text.length;) {
    const length = text.codePointAt(at)! > 0xffff ? 2 : 1;
    const index = symbols.length;
    symbols.push({
      start: at,
      length,
      prev: index - 1,
      next: at + length < text.length ? index + 1 : -1,
    });
    at += length;
  }
  const queue = new Heap<Bigram>(higherScoreFirst);
  const slice = (s: SymbolSpan, extra = 0) => text.slice(s.start, s.start + s.length + extra);
  const tryAdd = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const joined = slice(symbols[left], symbols[right].length);
    const id = vocab.textToId.get(joined);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id], size: joined.length });
  };
  for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);

  while (queue.size > 0) {
    const bigram = queue.pop()!;
    const left = symbols[bigram.left], right = symbols[bigram.right];
    if (left.length === 0 || right.length === 0 || left.length + right.length !== bigram.size) {
      continue;
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    tryAdd(left.prev, bigram.left);
    tryAdd(bigram.left, left.next);
  }

  for (let i = symbols.length > 0 ? 0 : -1; i !== -1; i = symbols[i].next) {
    const piece = slice(symbols[i]);
    const id = vocab.textToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    // Merged pieces are always tokens, so only single codepoints fall back to bytes.
    for (const byte of utf8(piece)) {
      const b = byteToken(vocab, byte);
      if (b !== undefined) out.push(b);
    }
  }
}
