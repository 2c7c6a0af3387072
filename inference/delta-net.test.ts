import assert from "node:assert/strict";
import { GgmlType } from "./ggml-type.ts";
import type { ModelConfig } from "./model-config.ts";
import type { RecurrentConfig } from "./recurrent-config.ts";
import type { LayerWeights, Matrix, ModelWeights } from "./weights.ts";
import type { RunState, StepRows } from "./attention.ts";
import { linearAttentionBlock, linearAttentionScratch } from "./delta-net.ts";
import { createRecurrentState, rewindSequence } from "./recurrent-state.ts";
import { createRng } from "./rng.ts";

// A small linear-attention layer: 2 query/key heads, 4 value heads (value head h reads key head
// h mod 2, as ggml_repeat_4d tiles them), a 4-tap conv.
const R: RecurrentConfig = {
  recurrentLayers: [true],
  convKernel: 4,
  kHeads: 2,
  vHeads: 4,
  headDim: 8,
  convDim: (2 * 2 + 4) * 8,
};
const DIM = 16, EPS = 1e-6;
const CONFIG = { dim: DIM, layers: 1, normEps: EPS, recurrent: R } as unknown as ModelConfig;
const VDIM = R.vHeads * R.headDim, KDIM = R.kHeads * R.headDim;

function values(rng: ReturnType<typeof createRng>, n: number, centre = 0, scale = 1) {
  return Float32Array.from({ length: n }, () => centre + scale * (2 * rng.nextFloat() - 1));
}

function matrix(name: string, rows: number, cols: number, w: Float32Array): Matrix {
  return { name, type: GgmlType.F32, rows, cols, data: new Uint8Array(w.buffer) };
}

interface Raw {
  attnNorm: Float32Array;
  wqkv: Float32Array;
  wz: Float32Array;
  conv: Float32Array;
  dtBias: Float32Array;
  a: Float32Array;
  wBeta: Float32Array;
  wAlpha: Float32Array;
  norm: Float32Array;
  wOut: Float32Array;
}

function randomLayer(seed: number): { raw: Raw; weights: ModelWeights } {
  const rng = createRng(seed);
  const raw: Raw = {
    attnNorm: values(rng, DIM, 1, 0.2),
    wqkv: values(rng, R.convDim * DIM, 0, 0.5),
    wz: values(rng, VDIM * DIM, 0, 0.5),
    conv: values(rng, R.convDim * R.convKernel, 0, 0.6),
    dtBias: values(rng, R.vHeads, -1, 0.5),
    a: values(rng, R.vHeads, -2, 1),
    wBeta: values(rng, R.vHeads * DIM, 0, 0.5),
    wAlpha: values(rng, R.vHeads * DIM, 0, 0.5),
    norm: values(rng, R.headDim, 1, 0.2),
    wOut: values(rng, DIM * VDIM, 0, 0.3),
  };
  const layer = {
    attnNorm: raw.attnNorm,
    ffnNorm: raw.attnNorm,
    linear: {
      wqkv: matrix("qkv", R.convDim, DIM, raw.wqkv),
      wz: matrix("z", VDIM, DIM, raw.wz),
      conv: raw.conv,
      dtBias: raw.dtBias,
      a: raw.a,
      wBeta: matrix("beta", R.vHeads, DIM, raw.wBeta),
      wAlpha: matrix("alpha", R.vHeads, DIM, raw.wAlpha),
      norm: raw.norm,
      wOut: matrix("out", DIM, VDIM, raw.wOut),
    },
  } as unknown as LayerWeights;
  return { raw, weights: { layerStart: 0, layerEnd: 1, layers: [layer] } };
}

// ---------------------------------------------------------------------------
// The slow, direct transcription: llama.cpp's graph (qwen35moe.cpp build_layer_attn_linear)
// written with plain arrays, S as S[i][j] (key index i, value index j) like the Hugging Face
// recurrent reference, one sequence of tokens at a time.

const dot = (w: Float32Array, row: number, x: number[]) =>
  x.reduce((s, xi, i) => s + w[row * x.length + i] * xi, 0);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const silu = (x: number) => x * sigmoid(x);
const softplus = (x: number) => x > 20 ? x : Math.log(1 + Math.exp(x));
const rms = (x: number[], w: Float32Array) => {
  const s = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + EPS);
  return x.map((v, i) => v * s * w[i]);
};
const l2 = (x: number[]) => {
  const s = 1 / Math.max(Math.sqrt(x.reduce((a, v) => a + v * v, 0)), EPS);
  return x.map((v) => v * s);
};

interface SlowState {
  window: number[][]; // per channel, the last convKernel − 1 inputs
  S: number[][][]; // per value head, S[i][j]
}

function slowState(): SlowState {
  const d = R.headDim;
  return {
    window: Array.from({ length: R.convDim }, () => new Array(R.convKernel - 1).fill(0)),
    S: Array.from(
      { length: R.vHeads },
      () => Array.from({ length: d }, () => new Array(d).fill(0)),
    ),
  };
}

/** One token through the layer: the hidden row after the residual add. */
function slowToken(raw: Raw, st: SlowState, h: number[]): number[] {
  const d = R.headDim;
  const x = rms(h, raw.attnNorm);
  const mixed = Array.from({ length: R.convDim }, (_, c) => dot(raw.wqkv, c, x));
  const z = Array.from({ length: VDIM }, (_, c) => dot(raw.wz, c, x));
  const conv = mixed.map((m, c) => {
    const input = [...st.window[c], m];
    st.window[c] = input.slice(1);
    return silu(input.reduce((s, v, i) => s + v * raw.conv[c * R.convKernel + i], 0));
  });
  const head = (o: number, hh: number) => conv.slice(o + hh * d, o + (hh + 1) * d);
  const out: number[] = [];
  for (let hv = 0; hv < R.vHeads; hv++) {
    const q = l2(head(0, hv % R.kHeads)).map((v) => v / Math.sqrt(d));
    const k = l2(head(KDIM, hv % R.kHeads));
    const v = head(2 * KDIM, hv);
    const beta = sigmoid(dot(raw.wBeta, hv, x));
    const g = softplus(dot(raw.wAlpha, hv, x) + raw.dtBias[hv]) * raw.a[hv];
    const S = st.S[hv];
    for (const row of S) for (let j = 0; j < d; j++) row[j] *= Math.exp(g);
    const kvMem = Array.from(
      { length: d },
      (_, j) => S.reduce((s, row, i) => s + row[j] * k[i], 0),
    );
    const delta = v.map((vj, j) => (vj - kvMem[j]) * beta);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) S[i][j] += k[i] * delta[j];
    const o = Array.from({ length: d }, (_, j) => S.reduce((s, row, i) => s + row[j] * q[i], 0));
    const gated = rms(o, raw.norm).map((val, j) => val * silu(z[hv * d + j]));
    out.push(...gated);
  }
  return h.map((hi, r) => hi + dot(raw.wOut, r, out));
}

// ---------------------------------------------------------------------------

function sequenceState(): RunState {
  return { position: 0, recurrent: createRecurrentState(CONFIG, 0, 1) } as unknown as RunState;
}

/** Runs `groups` (state, rows of hidden) as one step of stacked rows; returns the outputs. */
function step(weights: ModelWeights, groups: { state: RunState; rows: number[][] }[]) {
  const all = groups.flatMap((g) => g.rows);
  const hidden = Float32Array.from(all.flat());
  const owner = groups.flatMap((g) => g.rows.map(() => g.state));
  const rows: StepRows = { n: all.length, state: (t) => owner[t], pos: new Int32Array(all.length) };
  linearAttentionBlock(
    CONFIG,
    weights,
    0,
    rows,
    hidden,
    linearAttentionScratch(CONFIG, all.length),
  );
  for (const g of groups) g.state.position += g.rows.length;
  return all.map((_, t) => Array.from(hidden.subarray(t * DIM, (t + 1) * DIM)));
}

function assertClose(actual: number[][], expected: number[][], what: string) {
  let worst = 0;
  actual.forEach((row, t) =>
    row.forEach((v, i) => worst = Math.max(worst, Math.abs(v - expected[t][i])))
  );
  assert.ok(worst < 2e-5, `${what}: differs from the direct transcription by ${worst}`);
}

const TOKENS = 9;
const inputs = (seed: number) => {
  const rng = createRng(seed);
  return Array.from({ length: TOKENS }, () => Array.from(values(rng, DIM, 0, 1)));
};

Deno.test("delta net: a prefill of many rows equals llama.cpp's recurrence, token by token", () => {
  const { raw, weights } = randomLayer(11);
  const xs = inputs(12);
  const slow = slowState();
  const want = xs.map((h) => slowToken(raw, slow, h));
  // All rows in one step (prefill), then the same sequence one row per step (decode).
  assertClose(step(weights, [{ state: sequenceState(), rows: xs }]), want, "one step");
  const state = sequenceState();
  const oneByOne = xs.flatMap((h) => step(weights, [{ state, rows: [h] }]));
  assertClose(oneByOne, want, "row by row");
  // 3 + 6 rows: the state carries across steps.
  const split = sequenceState();
  const parts = [
    ...step(weights, [{ state: split, rows: xs.slice(0, 3) }]),
    ...step(weights, [{ state: split, rows: xs.slice(3) }]),
  ];
  assertClose(parts, want, "3 + 6 rows");
});

Deno.test("delta net: two sequences stacked in one step keep their own states", () => {
  const { weights } = randomLayer(21);
  const a = inputs(22), b = inputs(23);
  const alone = (xs: number[][]) => step(weights, [{ state: sequenceState(), rows: xs }]);
  const wantA = alone(a), wantB = alone(b);
  const sa = sequenceState(), sb = sequenceState();
  // Prefill both together, then decode both together a row at a time.
  const first = step(weights, [{ state: sa, rows: a.slice(0, 5) }, {
    state: sb,
    rows: b.slice(0, 4),
  }]);
  const gotA = first.slice(0, 5), gotB = first.slice(5);
  for (let t = 5; t < TOKENS; t++) {
    const out = step(weights, [{ state: sa, rows: [a[t]] }, { state: sb, rows: [b[t - 1]] }]);
    gotA.push(out[0]);
    gotB.push(out[1]);
  }
  gotB.push(...step(weights, [{ state: sb, rows: [b[TOKENS - 1]] }]));
  assertClose(gotA, wantA, "sequence a");
  assertClose(gotB, wantB, "sequence b");
});

Deno.test("delta net: a recurrent state rewinds to 0 (a fresh state) and refuses anything between", () => {
  const { weights } = randomLayer(31);
  const xs = inputs(32);
  const state = sequenceState();
  const first = step(weights, [{ state, rows: xs }]);
  assert.throws(() => rewindSequence(state, 4), /cannot rewind to 4: .*recurrent state/);
  assert.equal(state.position, TOKENS);
  rewindSequence(state, TOKENS); // the current position: nothing to undo
  rewindSequence(state, 0);
  assert.equal(state.position, 0);
  assert.deepEqual(step(weights, [{ state, rows: xs }]), first);
});
