import assert from "node:assert/strict";
import { GgmlType } from "./ggml-type.ts";
import { openGguf } from "./gguf.ts";
import { type ModelConfig, modelConfigOf, type MoeConfig } from "./model-config.ts";
import { checkShape, loadWeights, type Matrix, type ModelWeights, planTensors } from "./weights.ts";
import { modelShapeOf } from "./model-shape.ts";
import { expertMatrix, moeBlock, moeScratch, routeRow } from "./moe.ts";
import { matMul, rmsNorm, silu } from "./primitives.ts";
import { writeTestModel } from "../tests/support/test-models.ts";
import { moeTestModelShape } from "../tests/support/reference-models-moe.ts";

const softmaxMoe: MoeConfig = {
  experts: 4,
  used: 2,
  expertFfn: 8,
  gating: "softmax",
  normalizeTopK: false,
};

Deno.test("routeRow: softmax over all experts, then the top k by probability", () => {
  const logits = Float32Array.of(0.5, 2, -1, 1);
  const chosen = new Int32Array(2), weights = new Float32Array(2);
  routeRow(softmaxMoe, logits, 0, chosen, weights);
  assert.deepEqual([...chosen], [1, 3]);
  const z = Math.exp(0.5) + Math.exp(2) + Math.exp(-1) + Math.exp(1);
  assert.ok(Math.abs(weights[0] - Math.exp(2) / z) < 1e-7);
  assert.ok(Math.abs(weights[1] - Math.exp(1) / z) < 1e-7);
});

Deno.test("routeRow: ties go to the lower expert index, as ggml's argsort of few experts", () => {
  const chosen = new Int32Array(2), weights = new Float32Array(2);
  routeRow(softmaxMoe, Float32Array.of(1, 3, 1, 3), 0, chosen, weights);
  assert.deepEqual([...chosen], [1, 3]);
  routeRow(softmaxMoe, Float32Array.of(1, 0, 1, 1), 0, chosen, weights);
  assert.deepEqual([...chosen], [0, 2]);
});

Deno.test("routeRow: normalized top-k weights sum to one; softmax-after-topk; sigmoid", () => {
  const chosen = new Int32Array(2), weights = new Float32Array(2);
  routeRow(
    { ...softmaxMoe, normalizeTopK: true },
    Float32Array.of(0.5, 2, -1, 1),
    0,
    chosen,
    weights,
  );
  assert.ok(Math.abs(weights[0] + weights[1] - 1) < 1e-6);
  assert.ok(Math.abs(weights[0] - Math.exp(2) / (Math.exp(2) + Math.exp(1))) < 1e-6);

  routeRow(
    { ...softmaxMoe, gating: "softmax-after-topk" },
    Float32Array.of(0, 3, 1, 2),
    0,
    chosen,
    weights,
  );
  assert.deepEqual([...chosen], [1, 3]);
  assert.ok(Math.abs(weights[0] - 1 / (1 + Math.exp(-1))) < 1e-6);

  routeRow({ ...softmaxMoe, gating: "sigmoid" }, Float32Array.of(0, 3, 1, 2), 0, chosen, weights);
  assert.deepEqual([...chosen], [1, 3]);
  assert.ok(Math.abs(weights[1] - 1 / (1 + Math.exp(-2))) < 1e-6);
});

// A one-layer MoE of F32 weights: dim 16, 4 experts of width 8, 2 used.
const dim = 16, ffn = 8, experts = 4;

function f32Matrix(name: string, rows: number, cols: number, values: Float32Array): Matrix {
  return { name, type: GgmlType.F32, rows, cols, data: new Uint8Array(values.buffer) };
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  });
}

/** Router rows c_e · (1, ..., 1): with positive inputs expert order follows c. */
function tinyMoe(c: number[], poisonUnused: boolean) {
  const router = Float32Array.from({ length: experts * dim }, (_, i) => c[Math.floor(i / dim)]);
  const stacked = (rows: number, cols: number, seed: number) => {
    const v = seeded(experts * rows * cols, seed);
    if (poisonUnused) {
      // Experts 1 and 3 are never chosen: reading them would make the output NaN.
      for (const e of [1, 3]) v.fill(NaN, e * rows * cols, (e + 1) * rows * cols);
    }
    return v;
  };
  const moe = {
    router: f32Matrix("router", experts, dim, router),
    gateExps: f32Matrix("gate", experts * ffn, dim, stacked(ffn, dim, 1)),
    upExps: f32Matrix("up", experts * ffn, dim, stacked(ffn, dim, 2)),
    downExps: f32Matrix("down", experts * dim, ffn, stacked(dim, ffn, 3)),
  };
  const config = {
    dim,
    normEps: 1e-6,
    moe: { ...softmaxMoe, expertFfn: ffn },
  } as unknown as ModelConfig;
  const weights = {
    layers: [{ ffnNorm: new Float32Array(dim).fill(1), moe }],
  } as unknown as ModelWeights;
  return { config, weights, moe };
}

/** The block's output computed naively: every row on its own, the experts by the definition. */
function naive(config: ModelConfig, weights: ModelWeights, hidden: Float32Array, n: number) {
  const m = weights.layers[0].moe!;
  const out = hidden.slice();
  for (let t = 0; t < n; t++) {
    const x = new Float32Array(dim);
    rmsNorm(x, hidden.subarray(t * dim, (t + 1) * dim), weights.layers[0].ffnNorm, 1e-6);
    const logits = new Float32Array(experts);
    matMul(m.router, x, 1, logits);
    const chosen = new Int32Array(2), w = new Float32Array(2);
    routeRow(config.moe!, logits, 0, chosen, w);
    for (let k = 0; k < 2; k++) {
      const e = chosen[k];
      const g = new Float32Array(ffn), u = new Float32Array(ffn), d = new Float32Array(dim);
      matMul(expertMatrix(m.gateExps, e, experts), x, 1, g);
      matMul(expertMatrix(m.upExps, e, experts), x, 1, u);
      for (let i = 0; i < ffn; i++) g[i] = silu(g[i]) * u[i];
      matMul(expertMatrix(m.downExps, e, experts), g, 1, d);
      for (let i = 0; i < dim; i++) out[t * dim + i] += w[k] * d[i];
    }
  }
  return out;
}

Deno.test("moeBlock reads only the routed experts and equals the per-row definition", () => {
  const { config, weights } = tinyMoe([1, -5, 2, -5], true);
  const n = 3;
  const hidden = Float32Array.from({ length: n * dim }, (_, i) => 0.1 + (i % 7) * 0.05);
  const want = naive(config, weights, hidden, n);
  moeBlock(config, weights, 0, n, hidden, moeScratch(config, n));
  for (let i = 0; i < n * dim; i++) {
    assert.ok(Number.isFinite(hidden[i]), `output ${i} is ${hidden[i]}`);
    assert.ok(Math.abs(hidden[i] - want[i]) < 1e-5, `output ${i}: ${hidden[i]} vs ${want[i]}`);
  }
});

Deno.test("moeBlock: rows routed to different experts in one step each get their own", () => {
  const { config, weights } = tinyMoe([0.3, -0.2, 0.1, -0.4], false);
  const n = 4;
  // Rows of both signs: positive rows pick experts 0, 2; negative rows pick 3, 1.
  const hidden = Float32Array.from(
    { length: n * dim },
    (_, i) => (Math.floor(i / dim) % 2 ? -1 : 1) * (0.2 + (i % 5) * 0.1),
  );
  const want = naive(config, weights, hidden, n);
  const alone = new Float32Array(n * dim);
  for (let t = 0; t < n; t++) {
    const row = hidden.slice(t * dim, (t + 1) * dim);
    moeBlock(config, weights, 0, 1, row, moeScratch(config, 1));
    alone.set(row, t * dim);
  }
  moeBlock(config, weights, 0, n, hidden, moeScratch(config, n));
  for (let i = 0; i < n * dim; i++) {
    assert.ok(Math.abs(hidden[i] - want[i]) < 1e-5, `batched ${i}: ${hidden[i]} vs ${want[i]}`);
    assert.ok(Math.abs(alone[i] - want[i]) < 1e-5, `alone ${i}: ${alone[i]} vs ${want[i]}`);
  }
});

Deno.test("a qwen2moe GGUF: config, 3-D expert tensors planned, loaded as views, counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grove-moe-" });
  try {
    const path = `${dir}/m.gguf`;
    await writeTestModel(path, { ...moeTestModelShape("qwen2moe"), type: GgmlType.Q8_0, seed: 3 });
    const file = await openGguf(path);
    const config = modelConfigOf(file);
    assert.deepEqual(config.moe, {
      experts: 8,
      used: 2,
      expertFfn: 256,
      sharedFfn: 512,
      gating: "softmax",
      normalizeTopK: false,
    });
    assert.equal(config.qkvBias, true);
    const plan = planTensors(file, config, 1, 2);
    const exps = plan.find((t) => t.name === "blk.1.ffn_down_exps.weight");
    assert.deepEqual(exps, {
      name: "blk.1.ffn_down_exps.weight",
      shape: [256, 256],
      experts: 8,
      use: "layer",
    });
    assert.ok(!plan.some((t) => t.name === "blk.1.ffn_down.weight"));
    assert.ok(plan.some((t) => t.name === "blk.1.ffn_gate_inp_shexp.weight" && !t.shape));

    const info = file.tensor("blk.1.ffn_up_exps.weight")!;
    assert.equal(checkShape(info, [256, 256], 8), 2048);
    assert.throws(
      () => checkShape(info, [256, 256], 4),
      /has shape 8x256x256, the config needs 4x256x256/,
    );
    assert.throws(() => checkShape(info, [256, 256]), /the config needs 256x256/);

    const weights = await loadWeights(file, config, { layerStart: 1, layerEnd: 2 });
    const moe = weights.layers[0].moe!;
    assert.equal(weights.layers[0].wGate, undefined);
    assert.equal(moe.upExps.rows, 8 * 256);
    const e5 = expertMatrix(moe.upExps, 5, 8);
    assert.equal(e5.rows, 256);
    assert.equal(e5.data.buffer, moe.upExps.data.buffer, "an expert is a view, not a copy");
    assert.equal(e5.data.byteOffset - moe.upExps.data.byteOffset, 5 * e5.data.byteLength);

    const shape = modelShapeOf(file, config, 128);
    const own = file.tensors.filter((t) => t.name.startsWith("blk.1."));
    const held = own.reduce((s, t) => s + (t.dims.length === 1 ? t.dims[0] * 4 : t.byteLength), 0);
    assert.equal(shape.layerBytes[1], held);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
