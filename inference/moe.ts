/**
 * A mixture-of-experts feed-forward on the CPU, over the stacked rows of a step, in the order of
 * llama.cpp's build_moe_ffn (src/llama-graph.cpp): router logits → gating (softmax) → top-k →
 * optional normalization and scale of the k weights → each chosen expert's SwiGLU → its output
 * times its weight, summed over the k in top-k order; qwen2moe adds a shared expert scaled by
 * sigmoid(x · ffn_gate_inp_shexp).
 *
 * Only the chosen experts' weights are read: the rows of a step are grouped by expert, so each
 * routed expert's matrices are read once per step for all rows sent to it.
 */
import { byteLengthOf } from "./ggml-type.ts";
import type { ModelConfig, MoeConfig } from "./model-config.ts";
import type { Matrix, ModelWeights } from "./weights.ts";
import type { MoeWeightsOf } from "./moe-weights.ts";
import { matMul, rmsNorm, siluMul } from "./primitives.ts";
import { swigluOai } from "./gpt-oss.ts";

export type MoeWeights = MoeWeightsOf<Matrix, Float32Array>;

/** Scratch buffers of one step's MoE block, sized for its rows. */
export interface MoeScratch {
  xb: Float32Array; // (n, dim) the normed rows
  logits: Float32Array; // (n, experts)
  chosen: Int32Array; // (n, used) expert of each row's k-th choice
  weights: Float32Array; // (n, used) its weight
  outs: Float32Array; // (n, used, dim) the k-th chosen expert's output of each row
  gathered: Float32Array; // (n, dim) the rows routed to one expert
  gate: Float32Array; // (n, max(expertFfn, sharedFfn))
  up: Float32Array;
  proj: Float32Array; // (n, dim)
}

export function moeScratch(config: ModelConfig, n: number): MoeScratch {
  const { dim } = config;
  const moe = config.moe!;
  const hidden = Math.max(moe.expertFfn, moe.sharedFfn ?? 0);
  return {
    xb: new Float32Array(n * dim),
    logits: new Float32Array(n * moe.experts),
    chosen: new Int32Array(n * moe.used),
    weights: new Float32Array(n * moe.used),
    outs: new Float32Array(n * moe.used * dim),
    gathered: new Float32Array(n * dim),
    gate: new Float32Array(n * hidden),
    up: new Float32Array(n * hidden),
    proj: new Float32Array(n * dim),
  };
}

/** The floats moeScratch takes per row (model-shape.ts counts them in a step's activations). */
export function moeRowFloats(config: ModelConfig): number {
  const { experts, used, expertFfn, sharedFfn } = config.moe!;
  return config.dim * (3 + used) + experts + 2 * used + 2 * Math.max(expertFfn, sharedFfn ?? 0);
}

// ggml clamps the sum of the k weights to the smallest normal f16 before dividing by it.
const MIN_WEIGHT_SUM = 6.103515625e-5;

/**
 * Row `row`'s chosen experts and their weights from its router logits (`logits`, experts
 * wide, at row · experts), written to `chosen` / `weights` at row · used. Ties go to the lower
 * expert index, as ggml's argsort does for up to 16 experts (std::sort falls back to an
 * insertion sort, which keeps equal keys in index order).
 */
export function routeRow(
  moe: MoeConfig,
  logits: Float32Array,
  row: number,
  chosen: Int32Array,
  weights: Float32Array,
  bias?: Float32Array,
): void {
  const { experts, used, gating } = moe;
  const l = logits.subarray(row * experts, (row + 1) * experts);
  if (bias) { for (let e = 0; e < experts; e++) l[e] = Math.fround(l[e] + bias[e]); }
  if (gating === "softmax") softmaxInPlace(l);
  else if (gating === "sigmoid") {
    for (let e = 0; e < experts; e++) l[e] = 1 / (1 + Math.exp(-l[e]));
  }
  const c = chosen.subarray(row * used, (row + 1) * used);
  const w = weights.subarray(row * used, (row + 1) * used);
  // Top-k by selection: k is small (2-8), and strict > keeps the lower index on ties.
  for (let k = 0; k < used; k++) {
    let best = -1;
    for (let e = 0; e < experts; e++) {
      if (best >= 0 && !(l[e] > l[best])) continue;
      let taken = false;
      for (let j = 0; j < k && !taken; j++) taken = c[j] === e;
      if (!taken) best = e;
    }
    c[k] = best;
    w[k] = l[best];
  }
  if (gating === "softmax-after-topk") softmaxInPlace(w);
  if (moe.normalizeTopK) {
    let sum = 0;
    for (let k = 0; k < used; k++) sum += w[k];
    sum = Math.max(Math.fround(sum), MIN_WEIGHT_SUM);
    for (let k = 0; k < used; k++) w[k] = w[k] / sum;
  }
  if (moe.weightsScale !== undefined && moe.weightsScale !== 1) {
    for (let k = 0; k < used; k++) w[k] *= moe.weightsScale;
  }
}

function softmaxInPlace(v: Float32Array): void {
  let max = -Infinity;
  for (const x of v) if (x > max) max = x;
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] = Math.exp(v[i] - max);
    sum += v[i];
  }
  const inv = 1 / sum;
  for (let i = 0; i < v.length; i++) v[i] *= inv;
}

// Expert e of a stacked matrix, as a zero-copy view: built once per matrix.
const views = new WeakMap<Matrix, Matrix[]>();

/** Expert `e`'s matrix within a stack of `experts` (rows / experts rows each). */
export function expertMatrix(m: Matrix, e: number, experts: number): Matrix {
  let all = views.get(m);
  if (!all) {
    const rows = m.rows / experts;
    const bytes = byteLengthOf(m.type, rows * m.cols);
    all = Array.from({ length: experts }, (_, i) => ({
      name: `${m.name}[${i}]`,
      type: m.type,
      rows,
      cols: m.cols,
      data: m.data.subarray(i * bytes, (i + 1) * bytes),
    }));
    views.set(m, all);
  }
  return all[e];
}

function addBiasRows(
  v: Float32Array,
  bias: Float32Array,
  offset: number,
  width: number,
  n: number,
) {
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < width; i++) v[t * width + i] += bias[offset + i];
  }
}

/**
 * One layer's MoE feed-forward over `n` stacked rows: norm, routing, the routed experts (each
 * read once for its rows), the shared expert if any, and the residual add into `hidden`.
 */
export function moeBlock(
  config: ModelConfig,
  weights: ModelWeights,
  li: number,
  n: number,
  hidden: Float32Array,
  s: MoeScratch,
): void {
  const { dim, normEps } = config;
  const moe = config.moe!;
  const { experts, used, expertFfn: ffn } = moe;
  const layer = weights.layers[li];
  const w = layer.moe!;
  const { xb, logits, chosen, weights: kw, outs, gathered, gate, up, proj } = s;

  for (let t = 0; t < n; t++) rmsNorm(xb, hidden, layer.ffnNorm, normEps, dim, t * dim);
  matMul(w.router, xb, n, logits);
  for (let t = 0; t < n; t++) routeRow(moe, logits, t, chosen, kw, w.routerBias);

  // slots[e]: the (row · used + k) of every choice of expert e, in row order.
  const slots: number[][] = Array.from({ length: experts }, () => []);
  for (let i = 0; i < n * used; i++) slots[chosen[i]].push(i);
  for (let e = 0; e < experts; e++) {
    const mine = slots[e];
    const m = mine.length;
    if (m === 0) continue;
    for (let j = 0; j < m; j++) {
      const row = Math.floor(mine[j] / used);
      gathered.set(xb.subarray(row * dim, (row + 1) * dim), j * dim);
    }
    const x = gathered.subarray(0, m * dim);
    matMul(expertMatrix(w.gateExps, e, experts), x, m, gate);
    matMul(expertMatrix(w.upExps, e, experts), x, m, up, true);
    if (w.gateExpsBias) addBiasRows(gate, w.gateExpsBias, e * ffn, ffn, m);
    if (w.upExpsBias) addBiasRows(up, w.upExpsBias, e * ffn, ffn, m);
    if (moe.activation === "swiglu-oai") swigluOai(gate, up, m * ffn);
    else siluMul(gate, up, m * ffn);
    matMul(expertMatrix(w.downExps, e, experts), gate.subarray(0, m * ffn), m, proj);
    if (w.downExpsBias) addBiasRows(proj, w.downExpsBias, e * dim, dim, m);
    for (let j = 0; j < m; j++) {
      const slot = mine[j];
      const wk = kw[slot];
      const o = slot * dim;
      // f32 product per element, as ggml_mul of the expert outputs by their weights.
      for (let i = 0; i < dim; i++) outs[o + i] = proj[j * dim + i] * wk;
    }
  }
  // Sum over the k choices in top-k order, each add rounded to f32 as ggml's chain of adds.
  for (let t = 0; t < n; t++) {
    const base = t * used * dim;
    for (let k = 1; k < used; k++) {
      const o = base + k * dim;
      for (let i = 0; i < dim; i++) outs[base + i] += outs[o + i];
    }
  }
  if (w.sharedGateInp) sharedExpert(config, w, n, s);
  for (let t = 0; t < n; t++) {
    const o = t * used * dim;
    for (let i = 0; i < dim; i++) hidden[t * dim + i] += outs[o + i];
  }
}

/** qwen2moe's shared expert: its SwiGLU of every row, times sigmoid(x · gate_inp), into outs. */
function sharedExpert(config: ModelConfig, w: MoeWeights, n: number, s: MoeScratch): void {
  const { dim } = config;
  const { used, sharedFfn } = config.moe!;
  const { xb, gate, up, proj, outs } = s;
  matMul(w.sharedGate!, xb, n, gate);
  matMul(w.sharedUp!, xb, n, up, true);
  siluMul(gate, up, n * sharedFfn!);
  matMul(w.sharedDown!, gate.subarray(0, n * sharedFfn!), n, proj);
  const g = w.sharedGateInp!;
  for (let t = 0; t < n; t++) {
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += xb[t * dim + i] * g[i];
    const scale = Math.fround(1 / (1 + Math.exp(-Math.fround(dot))));
    const o = t * used * dim;
    for (let i = 0; i < dim; i++) outs[o + i] += Math.fround(proj[t * dim + i] * scale);
  }
}
