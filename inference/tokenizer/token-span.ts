/**
 * How much input text one token can stand for, so that a prompt's token count has a lower bound
 * known before tokenizing: a text of n UTF-16 code units needs at least ceil(n / maxTokenChars)
 * tokens. A serving node refuses a prompt far beyond its context on that bound alone, at once,
 * instead of spending seconds tokenizing megabytes first.
 *
 * Why the bound holds, per vocabulary kind (every input character ends up inside some token):
 * - SentencePiece and SPM-style BPE: a token's text is the input it covers, a space written `▁`
 *   (one unit for one unit); a byte token `<0xXX>` covers one byte, so at most one unit.
 * - Byte-level BPE: each character of a token stands for one input byte, and a text has at least
 *   as many UTF-8 bytes as UTF-16 units.
 * - Special and user-defined tokens are matched literally: their text is what they cover. Those
 *   that strip the whitespace beside them (lstrip/rstrip, e.g. Phi-3's) also swallow that
 *   whitespace; the bound ignores it, so a prompt holding megabytes of spaces next to such a
 *   token counts as longer than it is (no honest prompt does that).
 * - WordPiece drops whitespace and accents, so its tokens cover unbounded input: Infinity (the
 *   bound never refuses anything there).
 */
import { ATTR_BYTE, type Vocab } from "./vocab.ts";

/** The most UTF-16 code units of input text one token of `vocab` can stand for. */
export function maxTokenChars(vocab: Vocab): number {
  if (vocab.kind === "wpm") return Infinity;
  let max = 1;
  for (let id = 0; id < vocab.tokens.length; id++) {
    const n = vocab.attrs[id] & ATTR_BYTE ? 1 : vocab.tokens[id].length;
    if (n > max) max = n;
  }
  return max;
}
