/**
 * Splits text around special tokens before the model's tokenizer sees it, as llama.cpp's
 * `tokenizer_st_partition`: the longest special texts are cut out first, everywhere, then
 * shorter ones from what is left. Control and unknown tokens count only when special parsing
 * is on; user-defined tokens always do (as in Hugging Face tokenizers).
 */

import { ATTR_CONTROL, ATTR_LSTRIP, ATTR_RSTRIP, ATTR_UNKNOWN, type Vocab } from "./vocab.ts";

export type Fragment = { text: string } | { token: number };

// C isspace(): the only characters lstrip/rstrip remove.
const isCSpace = (c: string) => c === " " || (c >= "\t" && c <= "\r");

export function partition(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text.length > 0 ? [{ text }] : [];
  for (const id of vocab.specialTokens) {
    const attr = vocab.attrs[id];
    if (!parseSpecial && attr & (ATTR_CONTROL | ATTR_UNKNOWN)) continue;
    const special = vocab.tokens[id];
    const next: Fragment[] = [];
    for (const fragment of fragments) {
      if (!("text" in fragment) || !fragment.text.includes(special)) {
        next.push(fragment);
        continue;
      }
      let rest = fragment.text;
      for (let at = rest.indexOf(special); at >= 0; at = rest.indexOf(special)) {
        let left = rest.slice(0, at);
        if (attr & ATTR_LSTRIP) left = left.replace(/[ \t\n\v\f\r]+$/, "");
        if (left) next.push({ text: left });
        next.push({ token: id });
        rest = rest.slice(at + special.length);
        if (attr & ATTR_RSTRIP) {
          let k = 0;
          while (k < rest.length && isCSpace(rest[k])) k++;
          rest = rest.slice(k);
        }
      }
      if (rest) next.push({ text: rest });
    }
    fragments = next;
  }
  return fragments;
}
