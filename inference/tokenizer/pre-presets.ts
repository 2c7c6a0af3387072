/**
 * Pre-tokenizer presets keyed by GGUF `tokenizer.ggml.pre`, with the regexes llama.cpp uses
 * (`llm_tokenizer_bpe` in `src/llama-vocab.cpp`) and the per-preset vocab flags it sets.
 * The regex strings are exactly llama.cpp's (they are matched by identity for the hand-written
 * GPT-2 and Llama 3 splitters). Non-ASCII is written as `\u{..}` escapes, because several of
 * these characters (e.g. U+212A KELVIN SIGN) would be changed by Unicode normalization.
 */

import { GPT2_REGEX } from "./pretokenize.ts";

const raw = String.raw;

const LLAMA3 =
  raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2 =
  raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const CJK = raw`[\u{4E00}-\u{9FA5}\u{0800}-\u{4E00}\u{AC00}-\u{D7FF}]+`;
const DEEPSEEK_LETTERS =
  raw`\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}` +
  raw`\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}` +
  raw`\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}` +
  raw`\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}` +
  raw`\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}` +
  raw`\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}` +
  raw`\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}` +
  raw`\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}` +
  raw`\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}` +
  raw`\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}` +
  raw`\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}` +
  raw`\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}` +
  raw`\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}` +
  raw`\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}` +
  raw`\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}` +
  raw`\u{1E900}-\u{1E943}]+`;
const STARCODER_MAIN = GPT2_REGEX;
const GPT4O =
  raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const DEEPSEEK3_MAIN =
  raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_${"`"}{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** Regex lists by llama.cpp's pre-tokenizer family. */
const FAMILIES: Record<string, string[]> = {
  default: [raw`[\p{P}\$\+<=>\^~\|]+`, GPT2_REGEX, raw`\p{N}+`, "[0-9][0-9][0-9]"],
  llama3: [LLAMA3],
  "deepseek-llm": [
    "[\r\n]",
    DEEPSEEK_LETTERS,
    raw`\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+`,
    raw`\s+$`,
    CJK,
    raw`\p{N}+`,
  ],
  "deepseek-v3": [
    raw`\p{N}{1,3}`,
    raw`[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+`,
    DEEPSEEK3_MAIN,
  ],
  "deepseek-coder": ["[\r\n]", raw`\s?\p{L}+`, raw`\s?\p{P}+`, CJK, raw`\p{N}`],
  falcon: [raw`[\p{P}\$\+<=>\^~\|${"`"}]+`, GPT2_REGEX, "[0-9][0-9][0-9]"],
  starcoder: [raw`\p{N}`, STARCODER_MAIN],
  gpt2: [GPT2_REGEX],
  qwen2: [QWEN2],
  qwen35: [
    raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  ],
  poro: [raw` ?[^(\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{0964}\u{06D4}\u{060C})]+`],
  viking: [
    raw` ?[^(\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{0964}\u{06D4}\u{060C})]+`,
    raw`\p{N}`,
  ],
  tekken: [
    raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  ],
  gpt4o: [GPT4O],
  bailingmoe: [
    raw`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`,
  ],
  "seed-coder": [
    raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+`,
  ],
  minicpm5: [
    raw`\p{N}{1,3}`,
    raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  ],
};

export interface PreTokenizerPreset {
  regexes: string[];
  /** `ignore_merges`: a word that is already a token is not split by merges. */
  ignoreMerges: boolean;
  /** `clean_spaces`: detokenize removes spaces before punctuation (`" ,"` → `","`). */
  cleanSpaces: boolean;
  /** Default for add_bos before the GGUF key overrides it. */
  addBos: boolean;
  /** Default for add_sep before the GGUF key overrides it. */
  addSep: boolean;
  /** chatglm: llama.cpp drops the default BOS id. */
  noBos: boolean;
}

interface Entry {
  family: string;
  ignoreMerges?: boolean;
  clean?: boolean;
  addBos?: boolean;
  addSep?: boolean;
  noBos?: boolean;
}

const E = (family: string, extra: Omit<Entry, "family"> = {}): Entry => ({ family, ...extra });
const keepSpaces = { clean: false };
const llama3Like = E("llama3", { ignoreMerges: true, addBos: true });

/** `tokenizer.ggml.pre` names, as llama.cpp's `llama_vocab::impl::load` maps them. */
const PRESETS: Record<string, Entry> = {
  "default": E("default"),
  "llama3": llama3Like,
  "llama-v3": llama3Like,
  "llama-bpe": llama3Like,
  "falcon3": llama3Like,
  "falcon-h1": llama3Like,
  "pixtral": llama3Like,
  "midm-2.0": llama3Like,
  "lfm2": llama3Like,
  "jina-v5-nano": llama3Like,
  "dbrx": E("llama3"),
  "smaug-bpe": E("llama3"),
  "deepseek-llm": E("deepseek-llm", keepSpaces),
  "deepseek-coder": E("deepseek-coder", keepSpaces),
  "deepseek-v3": E("deepseek-v3", keepSpaces),
  "hunyuan-dense": E("deepseek-v3", keepSpaces),
  "hy_v4": E("deepseek-v3", keepSpaces),
  "joyai-llm": E("deepseek-v3", keepSpaces),
  "falcon": E("falcon"),
  "mpt": E("gpt2"),
  "starcoder": E("starcoder"),
  "refact": E("starcoder"),
  "command-r": E("starcoder", keepSpaces),
  "smollm": E("starcoder", keepSpaces),
  "codeshell": E("starcoder"),
  "exaone": E("starcoder"),
  "minerva-7b": E("starcoder"),
  "mellum2": E("starcoder"),
  "gpt-2": E("gpt2"),
  "phi-2": E("gpt2"),
  "jina-es": E("gpt2"),
  "jina-de": E("gpt2"),
  "gigachat": E("gpt2"),
  "jina-v2-es": E("gpt2"),
  "jina-v2-de": E("gpt2"),
  "a.x-4.0": E("gpt2"),
  "mellum": E("gpt2"),
  "modern-bert": E("gpt2"),
  "exaone4": E("gpt2"),
  "olmo": E("gpt2"),
  "jais": E("gpt2"),
  "trillion": E("gpt2", keepSpaces),
  "granite-docling": E("gpt2", keepSpaces),
  "jina-v1-en": E("gpt2", { addSep: true }),
  "jina-v2-code": E("gpt2", { addSep: true }),
  "roberta-bpe": E("gpt2", { addSep: true }),
  "qwen2": E("qwen2", keepSpaces),
  "deepseek-r1-qwen": E("qwen2", keepSpaces),
  "kormo": E("qwen2", keepSpaces),
  "f2llmv2": E("qwen2", keepSpaces),
  "megrez": E("qwen2"),
  "stablelm2": E("qwen2"),
  "hunyuan": E("qwen2", keepSpaces),
  "solar-open": E("qwen2", keepSpaces),
  "grok-2": E("qwen2", keepSpaces),
  "qwen35": E("qwen35", keepSpaces),
  "poro-chat": E("poro", keepSpaces),
  "bloom": E("poro"),
  "gpt3-finnish": E("poro"),
  "viking": E("viking", keepSpaces),
  "glm4": E("llama3", { noBos: true }),
  "chatglm-bpe": E("llama3", { noBos: true }),
  "tekken": E("tekken", { clean: false, ignoreMerges: true, addBos: true }),
  "gpt-4o": E("gpt4o", keepSpaces),
  "llama4": E("gpt4o", keepSpaces),
  "kanana2": E("gpt4o", keepSpaces),
  "talkie": E("gpt4o", keepSpaces),
  "minimax-m2": E("gpt4o", keepSpaces),
  "bailingmoe": E("bailingmoe", keepSpaces),
  "bailingmoe2": E("bailingmoe", keepSpaces),
  "llada-moe": E("bailingmoe", keepSpaces),
  "seed-coder": E("seed-coder", keepSpaces),
  "minicpm5": E("minicpm5", { ignoreMerges: true }),
};

/** The preset for a BPE vocab's `tokenizer.ggml.pre` (missing means "default", as in llama.cpp). */
export function bpePreset(pre: string | undefined): PreTokenizerPreset {
  const entry = PRESETS[pre ?? "default"];
  if (!entry) {
    throw new Error(
      `unsupported pre-tokenizer tokenizer.ggml.pre = '${pre}' (known: ${
        Object.keys(PRESETS).join(", ")
      })`,
    );
  }
  return {
    regexes: FAMILIES[entry.family],
    ignoreMerges: entry.ignoreMerges ?? false,
    cleanSpaces: entry.clean ?? true,
    addBos: entry.addBos ?? false,
    addSep: entry.addSep ?? false,
    noBos: entry.noBos ?? false,
  };
}
