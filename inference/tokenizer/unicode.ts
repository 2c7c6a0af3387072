/**
 * Codepoint facts the tokenizers need, matched to llama.cpp's `unicode.cpp`: one general
 * category per codepoint, its own whitespace set (Unicode White_Space, which differs from
 * JavaScript's `\s`), lowercasing and "first codepoint of the NFD form", and GPT-2's
 * byte-to-unicode table.
 */

export const FLAG_NUMBER = 1 << 0; // \p{N}
export const FLAG_LETTER = 1 << 1; // \p{L}
export const FLAG_SEPARATOR = 1 << 2; // \p{Z}
export const FLAG_ACCENT_MARK = 1 << 3; // \p{M}
export const FLAG_PUNCTUATION = 1 << 4; // \p{P}
export const FLAG_SYMBOL = 1 << 5; // \p{S}
export const FLAG_CONTROL = 1 << 6; // \p{C}, unassigned codepoints included
export const FLAG_WHITESPACE = 1 << 7;

// The 25 codepoints llama.cpp treats as whitespace. JS `\s` adds U+FEFF and lacks U+0085.
const WHITESPACE = new Set([
  0x09,
  0x0a,
  0x0b,
  0x0c,
  0x0d,
  0x20,
  0x85,
  0xa0,
  0x1680,
  0x2000,
  0x2001,
  0x2002,
  0x2003,
  0x2004,
  0x2005,
  0x2006,
  0x2007,
  0x2008,
  0x2009,
  0x200a,
  0x2028,
  0x2029,
  0x202f,
  0x205f,
  0x3000,
]);

const CATEGORIES: [RegExp, number][] = [
  [/\p{N}/u, FLAG_NUMBER],
  [/\p{L}/u, FLAG_LETTER],
  [/\p{Z}/u, FLAG_SEPARATOR],
  [/\p{M}/u, FLAG_ACCENT_MARK],
  [/\p{P}/u, FLAG_PUNCTUATION],
  [/\p{S}/u, FLAG_SYMBOL],
];

// Filled lazily: classifying all 1.1M codepoints up front would cost ~100 ms per process.
const flagCache = new Uint16Array(0x110000);
const COMPUTED = 1 << 15;

/** Category flags of a codepoint (exactly one category bit, plus FLAG_WHITESPACE). */
export function cptFlags(cpt: number): number {
  if (cpt < 0 || cpt >= 0x110000) return 0;
  const cached = flagCache[cpt];
  if (cached) return cached & ~COMPUTED;
  const ch = String.fromCodePoint(cpt);
  let flags = FLAG_CONTROL;
  for (const [re, flag] of CATEGORIES) {
    if (re.test(ch)) {
      flags = flag;
      break;
    }
  }
  if (WHITESPACE.has(cpt)) flags |= FLAG_WHITESPACE;
  flagCache[cpt] = flags | COMPUTED;
  return flags;
}

/** Simple lowercase mapping: the first codepoint of the full lowercase, like Python's `lower()[0]`. */
export function toLower(cpt: number): number {
  if (cpt < 0x80) return cpt >= 0x41 && cpt <= 0x5a ? cpt + 32 : cpt;
  return String.fromCodePoint(cpt).toLowerCase().codePointAt(0) ?? cpt;
}

/** llama.cpp's per-codepoint "NFD": the first codepoint of the decomposition (drops marks). */
export function nfdFirst(cpt: number): number {
  if (cpt < 0xc0) return cpt;
  return String.fromCodePoint(cpt).normalize("NFD").codePointAt(0) ?? cpt;
}

export function codepoints(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) out.push(ch.codePointAt(0)!);
  return out;
}

/** Builds a string from codepoints [start, end) in chunks (spreading huge arrays overflows the stack). */
export function fromCodepoints(cpts: number[], start = 0, end = cpts.length): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCodePoint(...cpts.slice(i, Math.min(end, i + 4096)));
  }
  return out;
}

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** GPT-2's reversible map from bytes to printable codepoints (space → Ġ, newline → Ċ, ...). */
function buildByteMaps(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array(256);
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    byteToChar[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  }
  const charToByte = new Map<string, number>();
  byteToChar.forEach((ch, b) => charToByte.set(ch, b));
  return { byteToChar, charToByte };
}

export const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildByteMaps();

/** Maps text to its GPT-2 byte-level form: every UTF-8 byte becomes one printable char. */
export function byteEncode(text: string): string {
  let out = "";
  for (const b of utf8(text)) out += BYTE_TO_CHAR[b];
  return out;
}
