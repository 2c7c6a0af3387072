/**
 * Token ids back to text, as llama.cpp's `token_to_piece` and `detokenize` do it: pieces are
 * bytes (byte tokens, GPT-2 byte-level characters), so text is only formed once a UTF-8
 * sequence is complete. The streaming decoder holds back an incomplete tail.
 */

import { CHAR_TO_BYTE, utf8 } from "./unicode.ts";
import {
  ATTR_BYTE,
  ATTR_CONTROL,
  ATTR_NORMAL,
  ATTR_UNKNOWN,
  ATTR_USER_DEFINED,
  type Vocab,
} from "./vocab.ts";

const EMPTY = new Uint8Array(0);

/** The bytes one token stands for. Control/unknown tokens are empty unless `special`. */
export function tokenPiece(vocab: Vocab, id: number, special: boolean): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id >= vocab.tokens.length) {
    throw new RangeError(
      `token id ${id} is outside the vocabulary (0..${vocab.tokens.length - 1})`,
    );
  }
  const attr = vocab.attrs[id];
  const text = vocab.tokens[id];
  if (attr & (ATTR_CONTROL | ATTR_UNKNOWN)) return special ? utf8(text) : EMPTY;
  if (attr & ATTR_USER_DEFINED) return utf8(text);
  if (attr & ATTR_NORMAL) {
    if (vocab.escapeWhitespaces) return utf8(text.replaceAll("\u2581", " "));
    return byteLevelDecode(text);
  }
  if (attr & ATTR_BYTE) {
    // <0xXX> (SPM); a BPE vocab's byte tokens are named the same way when it has any.
    return Uint8Array.of(parseInt(text.slice(3, 5), 16));
  }
  return EMPTY; // unused / undefined tokens render as nothing
}

function byteLevelDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...utf8(ch)); // not a byte-level char: keep it as it is
  }
  return Uint8Array.from(out);
}

export interface DecodeOptions {
  /** Render control tokens (BOS, EOS, ...) as their text, like llama.cpp's `special = true`. */
  special?: boolean;
}

/**
 * llama_detokenize(remove_special = false): the first piece loses one leading space when the
 * vocab adds a space prefix (so a BOS first keeps the space after it, as in llama.cpp), and
 * BPE/WordPiece vocabs get llama.cpp's clean-up of spaces before punctuation.
 */
export function detokenize(vocab: Vocab, ids: number[], options: DecodeOptions = {}): string {
  const bytes: number[] = [];
  ids.forEach((id, i) => {
    const piece = tokenPiece(vocab, id, options.special ?? false);
    const skip = i === 0 && vocab.addSpacePrefix && piece[0] === 0x20 ? 1 : 0;
    for (let k = skip; k < piece.length; k++) bytes.push(piece[k]);
  });
  const text = vocab.cleanSpaces ? cleanSpaces(bytes) : bytes;
  return new TextDecoder().decode(Uint8Array.from(text));
}

/**
 * llama.cpp's three in-place clean-up passes over the bytes (all they touch is ASCII), kept
 * in the same in-place form because later passes read what earlier writes left behind.
 */
function cleanSpaces(input: number[]): number[] {
  const SP = 0x20, Q = 0x27, s = 0x73, m = 0x6d, r = 0x72, v = 0x76, e = 0x65;
  const t = input.slice();
  // " ?", " !", " .", " ,"  →  "?", "!", ".", ","
  const n1 = t.length;
  let total = n1 ? 1 : 0;
  for (let i = 1; i < n1; i++) {
    const x = t[i];
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  // " ' "  →  "'"
  const n2 = total;
  total = n2 ? 1 : 0;
  for (let i = 1; i < n2; i++) {
    const x = t[i];
    if (x === Q && i + 1 < n2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  // " 's", " 'm", " 're", " 've"  →  "'s", "'m", "'re", "'ve" (" 't", " 'd", " 'll" stay)
  const n3 = total;
  total = n3 ? 1 : 0;
  for (let i = 1; i < n3; i++) {
    const x = t[i];
    if (t[i - 1] === SP && x === Q && i + 1 < n3) {
      const x1 = t[i + 1];
      if (x1 === s || x1 === m) total--;
      else if (i + 2 < n3 && (x1 === r || x1 === v) && t[i + 2] === e) total--;
    }
    t[total++] = x;
  }
  return t.slice(0, total);
}

/** Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence. */
export function completeUtf8Length(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

export interface StreamDecoder {
  push(id: number): string;
  flush(): string;
}

/** Pieces in generation order, without llama.cpp's whole-text clean-up (like its server). */
export function createStreamDecoder(vocab: Vocab): StreamDecoder {
  let pending = new Uint8Array(0);
  const decoder = new TextDecoder();
  return {
    push(id: number): string {
      const piece = tokenPiece(vocab, id, false);
      const all = new Uint8Array(pending.length + piece.length);
      all.set(pending);
      all.set(piece, pending.length);
      const cut = completeUtf8Length(all);
      pending = all.slice(cut);
      return decoder.decode(all.subarray(0, cut));
    },
    flush(): string {
      const rest = decoder.decode(pending);
      pending = new Uint8Array(0);
      return rest;
    },
  };
}
