/**
 * A linear-attention layer (gated delta net, qwen35moe) on the CPU over the stacked rows of a
 * step, as llama.cpp's graph computes it (src/models/qwen35moe.cpp build_layer_attn_linear,
 * src/models/delta-net-base.cpp, and ggml-cpu's ssm_conv, l2_norm and gated_delta_net):
 *
 *   qkv = W_qkv·x, z = W_gate·x, β = sigmoid(W_β·x), g = softplus(W_α·x + dt_bias) · A
 *   qkv ← silu(causal conv of the last convKernel qkv rows, per channel)
 *   q, k ← L2-normalised per head; value head h reads query/key head h mod kHeads
 *   S ← S · exp(g); δ = (v − Sᵀk) · β; S ← S + k δᵀ; o = Sᵀq / √headDim
 *   out = W_out · (rmsNorm(o per head) · silu(z))
 *
 * Each sequence's conv inputs and S live in its RunState (recurrent-state.ts); a sequence's rows
 * are consecutive positions, so stepping rows in order runs its recurrence in order.
 */
import type { ModelConfig } from "./model-config.ts";
import type { ModelWeights } from "./weights.ts";
import type { RecurrentConfig } from "./recurrent-config.ts";
import type { RecurrentLayerState } from "./recurrent-state.ts";
import type { StepRows } from "./attention.ts";
import { matMul, rmsNorm, silu } from "./primitives.ts";

/** One linear-attention layer's weights, whatever holds them: M a matrix, V a vector. */
export interface LinearAttentionWeightsOf<M, V> {
  wqkv: M; // (convDim, dim) attn_qkv
  wz: M; // (vHeads·headDim, dim) attn_gate: the output gate z
  conv: V; // (convDim · convKernel) ssm_conv1d: channel c's taps at c·convKernel, oldest first
  dtBias: V; // (vHeads) ssm_dt.bias
  a: V; // (vHeads) ssm_a: −exp(A_log), stored negated by llama.cpp's converter
  wBeta: M; // (vHeads, dim) ssm_beta
  wAlpha: M; // (vHeads, dim) ssm_alpha
  norm: V; // (headDim) ssm_norm
  wOut: M; // (dim, vHeads·headDim) ssm_out
}

export interface LinearAttentionScratch {
  xb: Float32Array;
  qkv: Float32Array;
  z: Float32Array;
  beta: Float32Array;
  alpha: Float32Array;
  out: Float32Array;
  proj: Float32Array;
}

export function linearAttentionScratch(config: ModelConfig, n: number): LinearAttentionScratch {
  const r = config.recurrent!;
  const valueDim = r.vHeads * r.headDim;
  return {
    xb: new Float32Array(n * config.dim),
    qkv: new Float32Array(n * r.convDim),
    z: new Float32Array(n * valueDim),
    beta: new Float32Array(n * r.vHeads),
    alpha: new Float32Array(n * r.vHeads),
    out: new Float32Array(n * valueDim),
    proj: new Float32Array(n * config.dim),
  };
}

/** ggml's softplus: log(1 + eᵡ), x itself above 20. */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log(1 + Math.exp(x));
}

/**
 * The causal conv of one new row `x` (convDim, at `xo`) over the state's last inputs, written
 * back into `x` after silu; the state then holds the newest convKernel − 1 inputs.
 */
export function convStep(
  r: RecurrentConfig,
  conv: Float32Array,
  state: Float32Array,
  x: Float32Array,
  xo: number,
): void {
  const k = r.convKernel, keep = k - 1;
  for (let c = 0; c < r.convDim; c++) {
    const so = c * keep, wo = c * k;
    const input = x[xo + c];
    let sum = 0;
    for (let i = 0; i < keep; i++) sum += state[so + i] * conv[wo + i];
    sum += input * conv[wo + keep];
    for (let i = 0; i + 1 < keep; i++) state[so + i] = state[so + i + 1];
    if (keep > 0) state[so + keep - 1] = input;
    x[xo + c] = silu(Math.fround(sum));
  }
}

/** x / max(‖x‖, eps) over `n` values at `o`, as ggml_l2_norm. */
export function l2Normalize(x: Float32Array, o: number, n: number, eps: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
  const scale = 1 / Math.max(Math.sqrt(ss), eps);
  for (let i = 0; i < n; i++) x[o + i] *= scale;
}

/**
 * One token of the gated delta rule on one value head's state M (d × d at `mo`, M[j·d + i] =
 * S[i][j]): decay by exp(g), correct towards v along k by β, read out with q into `out` at `oo`.
 */
export function deltaStep(
  m: Float32Array,
  mo: number,
  d: number,
  q: Float32Array,
  qo: number,
  k: Float32Array,
  ko: number,
  v: Float32Array,
  vo: number,
  g: number,
  beta: number,
  out: Float32Array,
  oo: number,
): void {
  const decay = Math.exp(g);
  for (let i = 0; i < d * d; i++) m[mo + i] *= decay;
  const scale = 1 / Math.sqrt(d);
  for (let j = 0; j < d; j++) {
    const row = mo + j * d;
    let sk = 0;
    for (let i = 0; i < d; i++) sk += m[row + i] * k[ko + i];
    const delta = (v[vo + j] - sk) * beta;
    let sq = 0;
    for (let i = 0; i < d; i++) {
      m[row + i] += k[ko + i] * delta;
      sq += m[row + i] * q[qo + i];
    }
    out[oo + j] = sq * scale;
  }
}

/** The stacked rows' projections a linear-attention layer's recurrence reads. */
export interface DeltaNetProjections {
  qkv: Float32Array; // rows · convDim: the conv's inputs, rewritten with its outputs
  z: Float32Array; // rows · vHeads · headDim: the output gate
  beta: Float32Array; // rows · vHeads
  alpha: Float32Array; // rows · vHeads
}

/**
 * Row t's recurrence after the projections: the conv, the Q/K L2 norms, the delta rule per value
 * head in `state` and the gated norm, into out[t · vHeads · headDim..].
 */
export function deltaNetRow(
  r: RecurrentConfig,
  w: Pick<LinearAttentionWeightsOf<unknown, Float32Array>, "conv" | "dtBias" | "a" | "norm">,
  state: RecurrentLayerState,
  x: DeltaNetProjections,
  t: number,
  normEps: number,
  out: Float32Array,
): void {
  const { qkv, z, beta, alpha } = x;
  const hd = r.headDim, keyDim = r.kHeads * hd, valueDim = r.vHeads * hd;
  const xo = t * r.convDim;
  convStep(r, w.conv, state.conv, qkv, xo);
  for (let h = 0; h < r.kHeads; h++) {
    l2Normalize(qkv, xo + h * hd, hd, normEps);
    l2Normalize(qkv, xo + keyDim + h * hd, hd, normEps);
  }
  for (let h = 0; h < r.vHeads; h++) {
    const kh = h % r.kHeads;
    const b = 1 / (1 + Math.exp(-beta[t * r.vHeads + h]));
    const g = softplus(alpha[t * r.vHeads + h] + w.dtBias[h]) * w.a[h];
    const oo = t * valueDim + h * hd;
    deltaStep(
      state.delta,
      h * hd * hd,
      hd,
      qkv,
      xo + kh * hd,
      qkv,
      xo + keyDim + kh * hd,
      qkv,
      xo + 2 * keyDim + h * hd,
      g,
      b,
      out,
      oo,
    );
    rmsNorm(out, out, w.norm, normEps, hd, oo);
    for (let i = 0; i < hd; i++) out[oo + i] *= silu(z[oo + i]);
  }
}

/**
 * One linear-attention layer over the stacked rows: norm, projections, conv, delta rule per
 * value head in each row's own sequence state, gated norm, output projection, and the residual
 * add into `hidden`.
 */
export function linearAttentionBlock(
  config: ModelConfig,
  weights: ModelWeights,
  li: number,
  rows: StepRows,
  hidden: Float32Array,
  s: LinearAttentionScratch,
): void {
  const r = config.recurrent!;
  const { dim, normEps } = config;
  const w = weights.layers[li].linear;
  if (!w) throw new Error(`layer ${weights.layerStart + li} has no linear-attention weights`);
  const { n } = rows;
  const { xb, qkv, z, beta, alpha, out, proj } = s;

  for (let t = 0; t < n; t++) {
    rmsNorm(xb, hidden, weights.layers[li].attnNorm, normEps, dim, t * dim);
  }
  matMul(w.wqkv, xb, n, qkv);
  matMul(w.wz, xb, n, z);
  matMul(w.wBeta, xb, n, beta);
  matMul(w.wAlpha, xb, n, alpha);

  for (let t = 0; t < n; t++) {
    const state = rows.state(t).recurrent?.layers[li] as RecurrentLayerState | undefined;
    if (!state) {
      throw new Error(`layer ${weights.layerStart + li}: the sequence has no recurrent state`);
    }
    deltaNetRow(r, w, state, { qkv, z, beta, alpha }, t, normEps, out);
  }
  matMul(w.wOut, out, n, proj);
  for (let i = 0; i < n * dim; i++) hidden[i] += proj[i];
}
