/**
 * Generated test models for context length and RoPE scaling: the usual test models
 * (test-models.ts) with `{arch}.rope.scaling.*` metadata added, and the tiny long-context model
 * the 16k test runs (tests/long-context.test.ts).
 */
import { GgmlType } from "../../inference/mod.ts";
import { f32, type MetaValue, str, u32, writeGguf } from "./gguf-writer.ts";
import { buildTestModel, type TestModelOptions } from "./test-models.ts";

/** RoPE scaling as a GGUF states it (llama.cpp's key names). */
export interface RopeScalingMeta {
  type: "linear" | "yarn";
  factor: number;
  originalContext?: number;
  attnFactor?: number;
}

/** Writes the test model of `o` with `scaling`'s metadata added. */
export async function writeScaledTestModel(
  path: string,
  o: TestModelOptions,
  scaling?: RopeScalingMeta,
): Promise<void> {
  const { metadata, tensors } = await buildTestModel(o);
  const extra: Record<string, MetaValue> = {};
  if (scaling) {
    const k = (key: string) => `${o.arch}.rope.scaling.${key}`;
    extra[k("type")] = str(scaling.type);
    extra[k("factor")] = f32(scaling.factor);
    if (scaling.originalContext !== undefined) {
      extra[k("original_context_length")] = u32(scaling.originalContext);
    }
    if (scaling.attnFactor !== undefined) extra[k("attn_factor")] = f32(scaling.attnFactor);
  }
  await writeGguf(path, { metadata: { ...metadata, ...extra }, tensors });
}

/**
 * The long-context model: qwen3 (NeoX RoPE, per-head norms) trained, as it says, at 16k tokens
 * by YaRN ×4 over 4k, as Qwen3's long-context GGUFs are (×4 over 32k). Tiny, so 16k positions
 * of attention run in seconds on the CPU engine.
 */
export const LONG_CONTEXT = 16384;
export const LONG_MODEL: TestModelOptions = {
  arch: "qwen3",
  type: GgmlType.F32,
  dim: 32,
  layers: 2,
  heads: 2,
  kvHeads: 1,
  headDim: 16,
  ffn: 64,
  seed: 15,
  contextLength: LONG_CONTEXT,
};
export const LONG_SCALING: RopeScalingMeta = {
  type: "yarn",
  factor: 4,
  originalContext: LONG_CONTEXT / 4,
};

export async function writeLongContextModel(path: string): Promise<string> {
  await writeScaledTestModel(path, LONG_MODEL, LONG_SCALING);
  return path;
}

/** A prompt of `n` token ids drawn from 3..vocab-1 (no BOS/EOS/unknown), the same every time. */
export function longPrompt(n: number, vocab = 512): number[] {
  let x = 0x9e3779b9;
  const out: number[] = [1];
  while (out.length < n) {
    // xorshift32: deterministic and independent of any library.
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(3 + (x % (vocab - 3)));
  }
  return out;
}
