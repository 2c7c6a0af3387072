/**
 * How a model stretches RoPE past the context it was trained at, read from GGUF metadata as
 * llama.cpp reads it (src/llama-model.cpp load_hparams, src/llama-context.cpp), and the constants
 * ggml's rope derives from it (ggml.c ggml_rope_yarn_corr_dims, ggml-cpu/ops.cpp rope_yarn).
 *
 * - none: positions as they are.
 * - linear: positions divided by `factor` (ggml: freq_scale = 1 / factor).
 * - yarn: per pair, a mix of the interpolated and the original angle by a ramp between the
 *   correction dims of beta_fast and beta_slow at the original context, and cos/sin scaled
 *   once by YaRN's 1 + 0.1·ln(factor) (rope_yarn multiplies it in; llama.cpp divides the same
 *   out of its attn_factor so that it is not applied twice), times rope.scaling.attn_factor.
 * - llama3: Llama 3.1's per-pair factors, stored as the `rope_freqs.weight` tensor (weights.ts
 *   reads it as ropeFreqFactors); llama.cpp has no scaling type for it, and neither is a
 *   scaling type here in the metadata: modelConfigOf names it so when that tensor is present.
 * - longrope: read for the record (phi3 keeps its factors in rope_long/rope_short tensors).
 *
 * All arithmetic is float32 where ggml's is, so the angles are ggml's to the last bit.
 */
import type { GgufValue } from "./gguf.ts";

export type RopeScalingType = "none" | "linear" | "yarn" | "llama3" | "longrope";

export interface RopeScaling {
  type: RopeScalingType;
  /** How many times the trained context is stretched (1: not at all). */
  factor: number;
  /** The context the model was trained at before stretching (YaRN's n_ctx_orig). */
  originalContext: number;
  /** YaRN's mix of extrapolated angles: 1 for yarn, 0 otherwise (ggml ext_factor). */
  extFactor: number;
  /** ggml's attn_factor: what cos and sin are scaled by before YaRN's own mscale. */
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
}

export const NO_ROPE_SCALING: RopeScaling = {
  type: "none",
  factor: 1,
  originalContext: 0,
  extFactor: 0,
  attnFactor: 1,
  betaFast: 32,
  betaSlow: 1,
};

const f = Math.fround;

function optionalNumber(meta: Record<string, GgufValue>, key: string): number | undefined {
  const v = meta[key];
  if (v === undefined) return undefined;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new Error(`model metadata "${key}" is not a number`);
  }
  return n;
}

/**
 * The scaling of `arch`'s metadata. Like llama.cpp, a missing type means "linear" (so a bare
 * factor still scales), a missing factor means none, and the original context defaults to the
 * trained one.
 */
export function ropeScalingFromMetadata(
  meta: Record<string, GgufValue>,
  arch: string,
  contextLength: number,
): RopeScaling {
  const k = (key: string) => `${arch}.rope.scaling.${key}`;
  const rawType = meta[k("type")] ?? "linear";
  if (typeof rawType !== "string" || !["none", "linear", "yarn", "longrope"].includes(rawType)) {
    throw new Error(
      `model metadata "${k("type")}" is ${JSON.stringify(rawType)}; ` +
        `Grove reads none, linear, yarn and longrope`,
    );
  }
  const factorKey = meta[k("factor")] !== undefined ? k("factor") : `${arch}.rope.scale_linear`;
  const factor = optionalNumber(meta, factorKey) ?? 0;
  if (factor < 0) throw new Error(`model metadata "${factorKey}" is ${factor}; expected ≥ 0`);
  const originalContext = optionalNumber(meta, k("original_context_length")) ?? contextLength;
  if (!Number.isInteger(originalContext) || originalContext < 1) {
    throw new Error(
      `model metadata "${k("original_context_length")}" is ${originalContext}; ` +
        "expected a whole number of tokens",
    );
  }
  const ropeAttnFactor = optionalNumber(meta, k("attn_factor")) ?? 1;
  const type = rawType as RopeScalingType;
  // ggml's freq_scale is 1 / factor, in f32; "none" never scales whatever the factor says.
  const freqScale = type === "none" || factor === 0 ? 1 : f(1 / f(factor));
  const extFactor = type === "yarn" ? 1 : 0;
  let attnFactor = 1;
  if (extFactor !== 0) {
    // llama-context.cpp: get_mscale(factor, 1), then divided by the mscale rope_yarn applies.
    const scale = f(1 / freqScale);
    const mscale = scale <= 1 ? 1 : f(f(f(0.1) * f(Math.log(scale))) + 1);
    attnFactor = f(mscale * f(1 / f(1 + f(f(0.1) * f(Math.log(scale))))));
  }
  attnFactor = f(attnFactor * f(ropeAttnFactor));
  return {
    type: freqScale === 1 && type === "linear" ? "none" : type,
    factor: f(1 / freqScale),
    originalContext,
    extFactor,
    attnFactor,
    betaFast: 32,
    betaSlow: 1,
  };
}

/** What ggml derives once per rope call from the scaling (all f32). */
export interface RopeConstants {
  /** base^(-2/ropeDim): each pair's angle is the previous one's times this. */
  thetaScale: number;
  freqScale: number;
  /** YaRN's ramp runs between these pair indices (ggml_rope_yarn_corr_dims). */
  corrLow: number;
  corrHigh: number;
  extFactor: number;
  /** What cos and sin are scaled by: attn_factor, times YaRN's own 1 + 0.1·ln(factor). */
  mscale: number;
}

function corrDim(ropeDim: number, originalContext: number, rotations: number, base: number) {
  // ggml: n_dims * logf(n_ctx_orig / (n_rot * 2 * M_PI)) / (2 * logf(base)), in f32.
  const inner = f(originalContext / f(f(rotations * 2) * f(Math.PI)));
  return f(f(ropeDim * f(Math.log(inner))) / f(2 * f(Math.log(base))));
}

export function ropeConstants(
  ropeDim: number,
  ropeBase: number,
  scaling: RopeScaling,
): RopeConstants {
  const freqScale = f(1 / scaling.factor);
  const original = scaling.originalContext;
  let corrLow = 0, corrHigh = 0;
  if (original > 0) {
    corrLow = Math.max(0, Math.floor(corrDim(ropeDim, original, scaling.betaFast, ropeBase)));
    corrHigh = Math.min(
      ropeDim - 1,
      Math.ceil(corrDim(ropeDim, original, scaling.betaSlow, ropeBase)),
    );
  }
  let mscale = f(scaling.attnFactor);
  if (scaling.extFactor !== 0) {
    mscale = f(mscale * f(1 + f(f(0.1) * f(Math.log(f(1 / freqScale))))));
  }
  return {
    thetaScale: f(Math.pow(ropeBase, f(-2 / ropeDim))),
    freqScale,
    corrLow,
    corrHigh,
    extFactor: scaling.extFactor,
    mscale,
  };
}

/** rope_yarn_ramp: 1 below the low correction dim, 0 above the high one, linear between. */
export function yarnRamp(low: number, high: number, pair: number): number {
  const y = f(f(pair - low) / Math.max(f(0.001), f(high - low)));
  return f(1 - Math.min(1, Math.max(0, y)));
}

/**
 * The angle multiplier of pair i relative to its unscaled angle, for kernels that take a
 * per-pair frequency table: theta = pos · base^(-2i/d) / ff_i · (this).
 */
export function pairFrequencyScale(c: RopeConstants, pair: number): number {
  if (c.extFactor === 0) return c.freqScale;
  const mix = yarnRamp(c.corrLow, c.corrHigh, pair) * c.extFactor;
  return c.freqScale * (1 - mix) + mix;
}
