/**
 * Byte-level BPE as llama.cpp's `llm_tokenizer_bpe_session` runs it: each pre-tokenized word
 * starts as single (byte-encoded) characters and the adjacent pair with the lowest merge rank
 * is merged first, leftmost on ties.
 */

import { Heap } from "./heap.ts";
import { utf8 } from "./unicode.ts";
import type { Vocab } from "./vocab.ts";

interface Bigram {
  left: number;
  right: number;
  rank: number;
  /** The joined text when queued; if the symbols changed since, the entry is stale. */
  text: string;
}

const lowerRankFirst = (a: Bigram, b: Bigram) =>
  a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/** Splits one word into the texts of its final symbols. */
export function bpeMerge(vocab: Vocab, word: string): string[] {
  if (vocab.preset?.ignoreMerges && vocab.textToId.has(word)) return [word];
  const texts = Array.from(word);
  const prev = texts.map((_, i) => i - 1);
  const next = texts.map((_, i) => (i + 1 < texts.length ? i + 1 : -1));
  const queue = new Heap<Bigram>(lowerRankFirst);
  const tryAdd = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const rank = vocab.mergeRanks.get(`${texts[left]} ${texts[right]}`);
    if (rank !== undefined) queue.push({ left, right, rank, text: texts[left] + texts[right] });
  };
  for (let i = 1; i < texts.length; i++) tryAdd(i - 1, i);

  while (queue.size > 0) {
    const { left, right, text } = queue.pop()!;
    if (texts[left] === "" || texts[right] === "" || texts[left] + texts[right] !== text) continue;
    texts[left] = text;
    texts[right] = "";
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryAdd(prev[left], left);
    tryAdd(left, next[left]);
  }
  return texts.filter((t) => t !== "");
}

/** Appends the ids of the words' symbols; unknown symbols fall back to one-byte tokens. */
export function bpeTokenize(vocab: Vocab, words: string[], out: number[]): void {
  for (const word of words) {
    for (const piece of bpeMerge(vocab, word)) {
      const id = vocab.textToId.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // llama.cpp looks each UTF-8 byte up as a one-byte string: only ASCII can match.
      for (const byte of utf8(piece)) {
        const b = byte < 0x80 ? vocab.textToId.get(String.fromCharCode(byte)) : undefined;
        if (b !== undefined) out.push(b);
      }
    }
  }
}
