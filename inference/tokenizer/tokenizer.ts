/**
 * The Tokenizer a model's GGUF metadata describes, encoding like llama.cpp's
 * `llama_vocab::impl::tokenize`: special tokens are cut out first, the text between them goes
 * to the vocab's own algorithm (SentencePiece, byte-level BPE or WordPiece).
 */

import type { GgufValue } from "../gguf.ts";
import { bpeTokenize } from "./bpe.ts";
import {
  createStreamDecoder,
  type DecodeOptions,
  detokenize,
  type StreamDecoder,
  tokenPiece,
} from "./decoder.ts";
import { createPreTokenizer, type PreTokenizer } from "./pretokenize.ts";
import { partition } from "./special.ts";
import { spmTokenize } from "./spm.ts";
import { maxTokenChars } from "./token-span.ts";
import { loadVocab, type Vocab } from "./vocab.ts";
import { wpmTokenize } from "./wordpiece.ts";

export interface EncodeOptions {
  /** Add BOS/EOS as the model asks (add_bos_token / add_eos_token; [CLS]/[SEP] for BERT). Default true. */
  addSpecial?: boolean;
  /** Read special-token texts (e.g. `<|im_end|>`) in the input as those tokens. Default true. */
  parseSpecial?: boolean;
}

export interface Tokenizer {
  vocabSize: number;
  bos: number | undefined;
  eos: number | undefined;
  eot: number | undefined;
  addBos: boolean;
  addEos: boolean;
  /**
   * The most UTF-16 code units of input one token can stand for (token-span.ts): a text of n
   * units has at least ceil(n / maxTokenChars) tokens. Infinity for WordPiece.
   */
  maxTokenChars: number;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: number[], options?: DecodeOptions): string;
  /** The token's text as stored in the vocabulary (▁ and byte-level characters included). */
  tokenText(id: number): string;
  /** The bytes the stream decoder gives for the token (none for control tokens). */
  tokenBytes(id: number): Uint8Array;
  isEndOfGeneration(id: number): boolean;
  createDecoder(): StreamDecoder;
}

function encodeWith(
  vocab: Vocab,
  pre: PreTokenizer | undefined,
  text: string,
  options: EncodeOptions,
): number[] {
  const addSpecial = options.addSpecial ?? true;
  const fragments = partition(vocab, text, options.parseSpecial ?? true);
  const out: number[] = [];
  if (vocab.kind === "spm") {
    if (addSpecial && vocab.addBos) out.push(vocab.bos!);
    let prevSpecial = true; // the text start counts as "after a special token"
    for (const f of fragments) {
      if ("token" in f) {
        out.push(f.token);
        prevSpecial = true;
        continue;
      }
      const spaced = vocab.addSpacePrefix && prevSpecial ? " " + f.text : f.text;
      spmTokenize(vocab, spaced.replaceAll(" ", "\u2581"), out);
      prevSpecial = false;
    }
    if (addSpecial && vocab.addEos) out.push(vocab.eos!);
  } else if (vocab.kind === "bpe") {
    if (addSpecial && vocab.addBos) out.push(vocab.bos!);
    for (const f of fragments) {
      if ("token" in f) out.push(f.token);
      else bpeTokenize(vocab, pre!.split(f.text), out);
    }
    if (addSpecial && vocab.addEos) out.push(vocab.eos!);
  } else {
    if (addSpecial) {
      if (vocab.bos === undefined) throw new Error("BERT vocab has no [CLS] (bos) token");
      out.push(vocab.bos);
    }
    for (const f of fragments) {
      if ("token" in f) out.push(f.token);
      else wpmTokenize(vocab, f.text, out);
    }
    if (addSpecial) {
      if (vocab.sep === undefined) throw new Error("BERT vocab has no [SEP] token");
      out.push(vocab.sep);
    }
  }
  return out;
}

export function tokenizerFromMetadata(metadata: Record<string, GgufValue>): Tokenizer {
  const vocab = loadVocab(metadata);
  const pre = vocab.preset ? createPreTokenizer(vocab.preset.regexes, true) : undefined;
  return {
    vocabSize: vocab.tokens.length,
    bos: vocab.bos,
    eos: vocab.eos,
    eot: vocab.eot,
    addBos: vocab.kind === "wpm" ? true : vocab.addBos,
    addEos: vocab.kind === "wpm" ? vocab.sep !== undefined : vocab.addEos,
    maxTokenChars: maxTokenChars(vocab),
    encode: (text, options = {}) => encodeWith(vocab, pre, text, options),
    decode: (ids, options) => detokenize(vocab, ids, options),
    tokenText(id) {
      const text = vocab.tokens[id];
      if (text === undefined) {
        throw new RangeError(
          `token id ${id} is outside the vocabulary (0..${vocab.tokens.length - 1})`,
        );
      }
      return text;
    },
    tokenBytes: (id) => tokenPiece(vocab, id, false),
    isEndOfGeneration: (id) => vocab.endOfGeneration.has(id),
    createDecoder: () => createStreamDecoder(vocab),
  };
}
