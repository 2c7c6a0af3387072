/**
 * The vocabulary as llama.cpp's `llama_vocab::impl::load` builds it from GGUF metadata:
 * token texts, scores and attributes, special ids with their per-model defaults, the flags
 * (add_bos, add_space_prefix, ...), the end-of-generation set and the special-token list
 * that text is partitioned by.
 */

import type { GgufValue } from "../gguf.ts";
import { bpePreset, type PreTokenizerPreset } from "./pre-presets.ts";
import { utf8Length } from "./unicode.ts";

export type VocabKind = "spm" | "bpe" | "wpm";

// llama_token_attr bits
export const ATTR_UNKNOWN = 1 << 0;
export const ATTR_UNUSED = 1 << 1;
export const ATTR_NORMAL = 1 << 2;
export const ATTR_CONTROL = 1 << 3;
export const ATTR_USER_DEFINED = 1 << 4;
export const ATTR_BYTE = 1 << 5;
export const ATTR_LSTRIP = 1 << 7;
export const ATTR_RSTRIP = 1 << 8;

// GGUF token_type values (llama_token_type) → attributes
const TYPE_TO_ATTR = [
  0,
  ATTR_NORMAL,
  ATTR_UNKNOWN,
  ATTR_CONTROL,
  ATTR_USER_DEFINED,
  ATTR_UNUSED,
  ATTR_BYTE,
];

export interface Vocab {
  kind: VocabKind;
  tokens: string[];
  scores: Float64Array;
  attrs: Uint16Array;
  textToId: Map<string, number>;
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  addBos: boolean;
  addEos: boolean;
  addSep: boolean;
  addSpacePrefix: boolean;
  removeExtraWhitespaces: boolean;
  /** SPM-style BPE (tokens hold ▁ for spaces); false for GPT-2 byte-level BPE. */
  escapeWhitespaces: boolean;
  cleanSpaces: boolean;
  lowercase: boolean;
  stripAccents: boolean;
  /** Longest token text in UTF-8 bytes. */
  maxTokenLength: number;
  /** BPE merge ranks keyed by "left right". */
  mergeRanks: Map<string, number>;
  preset?: PreTokenizerPreset;
  endOfGeneration: Set<number>;
  /** Control, user-defined and unknown tokens, longest text first: what text is split by. */
  specialTokens: number[];
}

type Metadata = Record<string, GgufValue>;

function get(meta: Metadata, key: string): GgufValue | undefined {
  return meta[key];
}

function num(meta: Metadata, key: string): number | undefined {
  const v = get(meta, key);
  if (v === undefined) return undefined;
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "number") throw new Error(`GGUF key ${key} should be a number, got ${typeof v}`);
  return v;
}

function bool(meta: Metadata, key: string): boolean | undefined {
  const v = get(meta, key);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    throw new Error(`GGUF key ${key} should be a boolean, got ${typeof v}`);
  }
  return v;
}

function array(meta: Metadata, key: string): GgufValue[] | undefined {
  const v = get(meta, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new Error(`GGUF key ${key} should be an array, got ${typeof v}`);
  return v;
}

const EOT_TEXTS = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|end_of_text|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "<｜end▁of▁sentence｜>",
  "<end_of_utterance>",
];
const EOG_TEXTS = new Set([
  ...EOT_TEXTS,
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "</s>",
  "<|eom_id|>",
  "[EOS]",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "[e~[",
]);
const FIM_EOG_TEXTS = [
  ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
  ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
  ["<|file_sep|>"],
];

/** Per-model defaults llama.cpp starts from before reading the GGUF ids and flags. */
function defaults(kind: VocabKind) {
  if (kind === "spm") {
    return { bos: 1, eos: 2, unk: 0, sep: -1, pad: -1, addBos: true, addSep: false };
  }
  if (kind === "wpm") {
    return { bos: 101, eos: -1, unk: 100, sep: 102, pad: 0, addBos: true, addSep: true };
  }
  return { bos: 11, eos: 11, unk: -1, sep: -1, pad: -1, addBos: false, addSep: false };
}

export function loadVocab(meta: Metadata): Vocab {
  const model = get(meta, "tokenizer.ggml.model");
  const kind: VocabKind | undefined = model === "llama"
    ? "spm"
    : model === "gpt2"
    ? "bpe"
    : model === "bert"
    ? "wpm"
    : undefined;
  if (!kind) {
    throw new Error(
      `unsupported tokenizer.ggml.model '${String(model)}' (supported: llama, gpt2, bert)`,
    );
  }
  const rawTokens = array(meta, "tokenizer.ggml.tokens");
  if (!rawTokens) throw new Error("GGUF metadata has no tokenizer.ggml.tokens");
  const n = rawTokens.length;
  const tokens = rawTokens.map((t, i) => (typeof t === "string" && t !== "" ? t : `[EMPTY_${i}]`));
  const textToId = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (textToId.has(t)) {
      throw new Error(`duplicate token '${t}' at ids ${textToId.get(t)} and ${i}`);
    }
    textToId.set(t, i);
  });

  const scores = new Float64Array(n);
  const rawScores = array(meta, "tokenizer.ggml.scores");
  if (rawScores) {
    if (rawScores.length < n) {
      throw new Error(`tokenizer.ggml.scores has ${rawScores.length} < ${n} entries`);
    }
    for (let i = 0; i < n; i++) scores[i] = Number(rawScores[i]);
  }
  const attrs = new Uint16Array(n).fill(ATTR_NORMAL);
  const types = array(meta, "tokenizer.ggml.token_type");
  if (types) {
    if (types.length < n) {
      throw new Error(`tokenizer.ggml.token_type has ${types.length} < ${n} entries`);
    }
    for (let i = 0; i < n; i++) attrs[i] = TYPE_TO_ATTR[Number(types[i])] ?? 0;
  }

  const d = defaults(kind);
  const preset = kind === "bpe"
    ? bpePreset(get(meta, "tokenizer.ggml.pre") as string | undefined)
    : undefined;
  const inRange = (id: number) => (id >= 0 && id < n ? id : undefined);
  const special = (key: string, fallback: number | undefined) => {
    const v = num(meta, `tokenizer.ggml.${key}`);
    return v !== undefined && v >= 0 && v < n ? v : fallback;
  };
  const bos = special("bos_token_id", preset?.noBos ? undefined : inRange(d.bos));
  const eos = special("eos_token_id", inRange(d.eos));
  const unk = special("unknown_token_id", inRange(d.unk));
  const sep = special("seperator_token_id", inRange(d.sep));
  const pad = special("padding_token_id", inRange(d.pad));
  let eot = special("eot_token_id", undefined);
  let eom = special("eom_token_id", undefined);
  const fim = ["fim_pad_token_id", "fim_rep_token_id", "fim_sep_token_id"].map((k) =>
    special(k, undefined)
  );

  const addBos = bool(meta, "tokenizer.ggml.add_bos_token") ?? (preset ? preset.addBos : d.addBos);
  const addEos = bool(meta, "tokenizer.ggml.add_eos_token") ?? false;
  const addSep = bool(meta, "tokenizer.ggml.add_sep_token") ?? (preset ? preset.addSep : d.addSep);
  if (addBos && bos === undefined) {
    throw new Error("add_bos_token is true, but bos_token_id is not set");
  }
  if (addEos && eos === undefined) {
    throw new Error("add_eos_token is true, but eos_token_id is not set");
  }

  // Texts that mark control tokens even when the converter forgot to (llama.cpp does the same).
  const markControl = (id: number) => (attrs[id] |= ATTR_CONTROL);
  for (const [text, id] of textToId) {
    if (eot === undefined && EOT_TEXTS.includes(text)) (eot = id, markControl(id));
    if (eom === undefined && text === "<|eom_id|>") (eom = id, markControl(id));
    FIM_EOG_TEXTS.forEach((names, k) => {
      if (fim[k] === undefined && names.includes(text)) (fim[k] = id, markControl(id));
    });
  }
  const endOfGeneration = new Set<number>();
  for (const id of fim) if (id !== undefined) endOfGeneration.add(id);
  for (const [text, id] of textToId) {
    if (EOG_TEXTS.has(text)) (endOfGeneration.add(id), markControl(id));
  }
  for (const id of [eos, eot, eom]) if (id !== undefined) endOfGeneration.add(id);
  // gpt-oss and solar-open use <|end|> between turns, not at the end of generation.
  const has = (t: string) => textToId.has(t) && endOfGeneration.has(textToId.get(t)!);
  if (
    has("<|end|>") &&
    ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))
  ) {
    const end = textToId.get("<|end|>")!;
    endOfGeneration.delete(end);
    attrs[end] = ATTR_USER_DEFINED;
  }

  const specialTokens: number[] = [];
  for (let id = 0; id < n; id++) {
    if (attrs[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) specialTokens.push(id);
  }
  const lengths = new Map(specialTokens.map((id) => [id, utf8Length(tokens[id])]));
  specialTokens.sort((a, b) => lengths.get(b)! - lengths.get(a)! || a - b);
  applyStripAttributes(meta, textToId, attrs, specialTokens);

  const mergeRanks = new Map<string, number>();
  if (kind === "bpe") {
    const merges = array(meta, "tokenizer.ggml.merges");
    if (!merges) {
      throw new Error("BPE vocab (tokenizer.ggml.model = gpt2) has no tokenizer.ggml.merges");
    }
    merges.forEach((m, rank) => {
      const s = String(m);
      const cut = s.indexOf(" ", 1);
      const key = cut < 0 ? " " : s;
      if (!mergeRanks.has(key)) mergeRanks.set(key, rank);
    });
  }

  const lowercase = bool(meta, "tokenizer.ggml.normalizer.lowercase") ?? true;
  return {
    kind,
    tokens,
    scores,
    attrs,
    textToId,
    bos,
    eos,
    eot,
    eom,
    unk,
    sep,
    pad,
    addBos,
    addEos,
    addSep,
    addSpacePrefix: bool(meta, "tokenizer.ggml.add_space_prefix") ?? kind === "spm",
    removeExtraWhitespaces: bool(meta, "tokenizer.ggml.remove_extra_whitespaces") ?? false,
    escapeWhitespaces: kind !== "bpe",
    cleanSpaces: kind === "wpm" || (preset?.cleanSpaces ?? false),
    lowercase,
    stripAccents: bool(meta, "tokenizer.ggml.normalizer.strip_accents") ?? lowercase,
    maxTokenLength: tokens.reduce((m, t) => Math.max(m, utf8Length(t)), 0),
    mergeRanks,
    preset,
    endOfGeneration,
    specialTokens,
  };
}

/** llama.cpp's per-model lstrip/rstrip overrides, chosen by model or pre-tokenizer name. */
function applyStripAttributes(
  meta: Metadata,
  textToId: Map<string, number>,
  attrs: Uint16Array,
  specialTokens: number[],
): void {
  const name = String(get(meta, "general.name") ?? "").toLowerCase();
  const pre = String(get(meta, "tokenizer.ggml.pre") ?? "");
  const arch = String(get(meta, "general.architecture") ?? "");
  const set = (text: string, attr: number, on: boolean) => {
    const id = textToId.get(text);
    if (id !== undefined) attrs[id] = on ? attrs[id] | attr : attrs[id] & ~attr;
  };
  if (
    ["jina-v2-de", "jina-v2-es", "jina-v2-code"].some((s) => pre.includes(s)) ||
    ["nomic-bert-moe", "jina-bert-v3"].some((s) => arch.includes(s))
  ) {
    set("<mask>", ATTR_LSTRIP, true);
  } else if (name.includes("phi-3") || name.includes("phi3")) {
    for (const id of specialTokens) attrs[id] |= ATTR_RSTRIP;
    set("</s>", ATTR_RSTRIP, true);
    for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, ATTR_RSTRIP, false);
  } else if (name.includes("modern-bert")) {
    set("[MASK]", ATTR_LSTRIP, true);
  }
}
