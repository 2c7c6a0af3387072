/** Tokenizers built from GGUF metadata, token for token equal to llama.cpp. */
export { type EncodeOptions, type Tokenizer, tokenizerFromMetadata } from "./tokenizer.ts";
export type { DecodeOptions, StreamDecoder } from "./decoder.ts";
