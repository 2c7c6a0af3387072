/**
 * Rotary position embedding as ggml computes it on the CPU (ggml-cpu/ops.cpp rope_f32:
 * ggml_rope_cache_init, rope_yarn, rotate_pairs), in float32 step for step, so that long
 * contexts (angles of thousands of radians) turn by ggml's angles and not by nearby ones.
 */
import type { ModelConfig } from "./model-config.ts";
import { NO_ROPE_SCALING, type RopeConstants, ropeConstants, yarnRamp } from "./rope-scaling.ts";

const f = Math.fround;

const constantsOf = new WeakMap<ModelConfig, RopeConstants>();

function constants(config: ModelConfig): RopeConstants {
  let c = constantsOf.get(config);
  if (!c) {
    const scaling = config.ropeScaling ??
      { ...NO_ROPE_SCALING, type: "linear", factor: config.ropeScale };
    c = ropeConstants(config.ropeDim, config.ropeBase, scaling);
    constantsOf.set(config, c);
  }
  return c;
}

let cosTable = new Float32Array(0);
let sinTable = new Float32Array(0);
// What the tables hold now: a row's keys turn by the angles its queries just took.
let filled: { c: RopeConstants; half: number; pos: number; freqFactors?: Float32Array } | null =
  null;

/** cos and sin of each pair's angle at `pos`, ggml_rope_cache_init's loop. */
function fillAngles(c: RopeConstants, half: number, pos: number, freqFactors?: Float32Array) {
  const last = filled;
  if (last && last.c === c && last.half === half && last.pos === pos) {
    if (last.freqFactors === freqFactors) return;
  }
  filled = { c, half, pos, freqFactors };
  if (cosTable.length < half) {
    cosTable = new Float32Array(half);
    sinTable = new Float32Array(half);
  }
  const { thetaScale, freqScale, extFactor, mscale, corrLow, corrHigh } = c;
  let theta = f(pos);
  for (let i = 0; i < half; i++) {
    const extrap = freqFactors ? f(theta / freqFactors[i]) : theta;
    let angle = f(freqScale * extrap);
    if (extFactor !== 0) {
      const mix = f(yarnRamp(corrLow, corrHigh, i) * extFactor);
      angle = f(f(angle * f(1 - mix)) + f(extrap * mix));
    }
    cosTable[i] = f(f(Math.cos(angle)) * mscale);
    sinTable[i] = f(f(Math.sin(angle)) * mscale);
    theta = f(theta * thetaScale);
  }
}

/**
 * Rotates the first `ropeDim` values of each head by position-dependent
 * angles: adjacent pairs (ggml "normal", llama) or halves (NeoX, qwen).
 */
export function rope(
  v: Float32Array,
  offset: number,
  heads: number,
  headDim: number,
  pos: number,
  config: ModelConfig,
  freqFactors?: Float32Array,
): void {
  const { ropeDim, ropeStyle } = config;
  const half = ropeDim / 2;
  fillAngles(constants(config), half, pos, freqFactors);
  for (let i = 0; i < half; i++) {
    const cos = cosTable[i], sin = sinTable[i];
    for (let h = 0; h < heads; h++) {
      const base = offset + h * headDim;
      const a = ropeStyle === "normal" ? base + 2 * i : base + i;
      const b = ropeStyle === "normal" ? a + 1 : a + half;
      const x0 = v[a], x1 = v[b];
      v[a] = x0 * cos - x1 * sin;
      v[b] = x0 * sin + x1 * cos;
    }
  }
}
