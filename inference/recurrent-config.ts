/**
 * The linear-attention (gated delta net) part of a hybrid model's config (qwen35moe), read from
 * GGUF metadata with llama.cpp's key names (src/models/qwen35moe.cpp load_arch_hparams):
 * `{arch}.ssm.*` for the delta net's shape, `{arch}.full_attention_interval` or
 * `{arch}.attention.recurrent_layers` for which layers are linear, and
 * `{arch}.rope.dimension_sections` for the full-attention layers' multi-section RoPE.
 */
import type { GgufValue } from "./gguf.ts";
import { metaCount } from "./metadata-numbers.ts";

export interface RecurrentConfig {
  /** Per layer: a linear-attention (recurrent) layer, else a full-attention one. */
  recurrentLayers: readonly boolean[];
  convKernel: number; // ssm.conv_kernel: taps of the causal conv over q, k, v
  kHeads: number; // ssm.group_count: query/key heads
  vHeads: number; // ssm.time_step_rank: value heads (a multiple of kHeads)
  headDim: number; // ssm.state_size: width of one key, query and value head
  /** Rows of the conv (q, k and v stacked): 2 · kHeads · headDim + vHeads · headDim. */
  convDim: number;
}

/** Architectures whose layers mix gated delta nets with gated full attention. */
const HYBRID_ARCHES = new Set(["qwen35moe"]);

export function isHybridArchitecture(arch: string): boolean {
  return HYBRID_ARCHES.has(arch);
}

function numbers(meta: Record<string, GgufValue>, key: string): number[] | undefined {
  const raw = meta[key];
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) throw new Error(`model metadata "${key}" is not an array`);
  return raw.map((v) =>
    typeof v === "bigint" ? Number(v) : typeof v === "boolean" ? +v : v
  ) as number[];
}

/**
 * With text positions llama.cpp's interleaved multi-section RoPE (IMROPE) gives the time, height
 * and width sections the same position and the fourth 0: a pair whose section is the fourth is
 * not rotated. Grove rotates every pair of the first `ropeDim` values (NeoX), which is the same
 * when the first three sections cover every pair, as Qwen3.5's [11, 11, 10, 0] over 32 do; other
 * sections are refused rather than computed wrong.
 */
function checkRopeSections(meta: Record<string, GgufValue>, arch: string, ropeDim: number) {
  const key = `${arch}.rope.dimension_sections`;
  const s = numbers(meta, key);
  if (!s || s.length < 3) throw new Error(`model metadata lacks "${key}" (4 section widths)`);
  const [t, h, w] = s, e = s[3] ?? 0;
  const total = t + h + w + e;
  for (let pair = 0; pair < ropeDim / 2; pair++) {
    const sector = pair % total;
    const rotated = (sector % 3 === 0 && sector < 3 * t) ||
      (sector % 3 === 1 && sector < 3 * h) || (sector % 3 === 2 && sector < 3 * w);
    if (!rotated) {
      throw new Error(
        `model metadata "${key}" is [${s}]: RoPE pair ${pair} of ${ropeDim / 2} falls in no text ` +
          `section, which Grove does not run`,
      );
    }
  }
}

/**
 * The recurrent config of a model of architecture `arch`, or undefined when it has no linear
 * layers. `layers` is the block count, `ropeDim` the full-attention layers' rotated width.
 */
export function recurrentConfigOf(
  meta: Record<string, GgufValue>,
  arch: string,
  layers: number,
  ropeDim: number,
  maxWidth: number,
): RecurrentConfig | undefined {
  if (!HYBRID_ARCHES.has(arch)) return undefined;
  const k = (key: string) => `${arch}.${key}`;
  const convKernel = metaCount(meta, k("ssm.conv_kernel"), 64);
  const headDim = metaCount(meta, k("ssm.state_size"), maxWidth);
  const vHeads = metaCount(meta, k("ssm.time_step_rank"), maxWidth);
  const kHeads = metaCount(meta, k("ssm.group_count"), vHeads);
  const inner = metaCount(meta, k("ssm.inner_size"), maxWidth);
  if (vHeads % kHeads !== 0 || inner !== headDim * vHeads) {
    throw new Error(
      `inconsistent linear attention shape: ssm.inner_size ${inner}, state_size ${headDim}, ` +
        `time_step_rank ${vHeads}, group_count ${kHeads}`,
    );
  }
  let recurrentLayers: boolean[];
  const listed = numbers(meta, k("attention.recurrent_layers"));
  if (listed) {
    if (listed.length < layers) {
      throw new Error(`model metadata "${k("attention.recurrent_layers")}" has too few entries`);
    }
    recurrentLayers = listed.slice(0, layers).map((v) => v !== 0);
  } else {
    const interval = metaCount(meta, k("full_attention_interval"), layers + 1, 4);
    recurrentLayers = Array.from({ length: layers }, (_, i) => (i + 1) % interval !== 0);
  }
  checkRopeSections(meta, arch, ropeDim);
  return {
    recurrentLayers,
    convKernel,
    kHeads,
    vHeads,
    headDim,
    convDim: (2 * kHeads + vHeads) * headDim,
  };
}
