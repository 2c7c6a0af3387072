import assert from "node:assert/strict";
import { GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { dequantize, quantize } from "../../quant/mod.ts";
import type { MoeConfig } from "../../model-config.ts";
import { routeRow } from "../../moe.ts";
import {
  assertClose,
  createF32,
  createTestGpu,
  randomF32,
  readF32,
  readU32,
  uploadF32,
  uploadU32,
} from "../../../tests/support/gpu.ts";
import { destroyMatrix, uploadMatrix } from "../weights.ts";
import { createMoeMatMul, createMoeMatVec } from "./moe-matvec.ts";
import { bindMoeCombine, bindMoeGroup, bindMoeRoute } from "./moe.ts";
import { submitKernels } from "./bound-kernel.ts";

const experts = 4, rows = 32, cols = 256;

for (const type of [GgmlType.F16, GgmlType.Q4_K, GgmlType.Q8_0, GgmlType.Q6_K]) {
  for (const variant of ["row", "workgroup"] as const) {
    Deno.test(`moe matvec (mul_mat_id) ${ggmlTypeName(type)} ${variant}: each pair's expert`, async () => {
      const gpu = await createTestGpu();
      const { device } = gpu;
      const w = randomF32(experts * rows * cols, 7);
      const data = quantize(type, w, cols);
      const exact = dequantize(type, data, experts * rows * cols);
      // 3 rows, 2 choices each; pair p reads x row p / 2. Expert 1 is never chosen.
      const ids = Uint32Array.of(2, 0, 3, 2, 0, 3);
      const x = randomF32(3 * cols, 8);
      const want = new Float32Array(ids.length * rows);
      ids.forEach((e, p) => {
        for (let r = 0; r < rows; r++) {
          let acc = 0;
          for (let c = 0; c < cols; c++) {
            acc += exact[(e * rows + r) * cols + c] * x[Math.floor(p / 2) * cols + c];
          }
          want[p * rows + r] = acc;
        }
      });
      // Two buffers of two experts each: the second half's pairs are found in their buffer.
      const m = uploadMatrix(device, { name: "exps", type, rows: experts * rows, cols, data }, {
        maxBindingBytes: 2 * rows * data.byteLength / (experts * rows) + 64,
        rowsMultiple: rows,
      });
      assert.equal(m.parts.length, 2);
      const xb = uploadF32(device, x), yb = createF32(device, want.length);
      const idb = uploadU32(device, ids);
      const op = createMoeMatVec(gpu, m, experts, { x: xb, y: yb, ids: idb }, {
        xPairDiv: 2,
        xStride: cols,
        variant,
      });
      submitKernels(device, [{ encode: (pass) => op.encode(pass, ids.length) }]);
      assertClose(await readF32(device, yb, want.length), want, { atol: 2e-4, rtol: 2e-4 }, "y");
      op.destroy();
      destroyMatrix(m);
      for (const b of [xb, yb, idb]) b.destroy();
    });
  }
}

for (const type of [GgmlType.F16, GgmlType.Q4_K, GgmlType.Q8_0, GgmlType.Q6_K]) {
  Deno.test(`moe matmul (grouped mul_mat_id) ${ggmlTypeName(type)}: a prefill step's pairs`, async () => {
    const gpu = await createTestGpu();
    const { device } = gpu;
    const w = randomF32(experts * rows * cols, 9);
    const data = quantize(type, w, cols);
    const exact = dequantize(type, data, experts * rows * cols);
    // 11 rows, 2 choices each (more pairs of expert 2 than one tile); expert 1 never chosen.
    const n = 11, used = 2;
    const ids = Uint32Array.from({ length: n * used }, (_, p) => [2, 0, 3, 2, 2, 3][p % 6]);
    for (let t = 0; t < n; t++) if (ids[2 * t] === ids[2 * t + 1]) ids[2 * t + 1] = 0;
    const x = randomF32(n * cols, 10);
    const want = new Float32Array(ids.length * rows);
    ids.forEach((e, p) => {
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        for (let c = 0; c < cols; c++) {
          acc += exact[(e * rows + r) * cols + c] * x[Math.floor(p / used) * cols + c];
        }
        want[p * rows + r] = acc;
      }
    });
    const m = uploadMatrix(device, { name: "exps", type, rows: experts * rows, cols, data }, {
      maxBindingBytes: 2 * rows * data.byteLength / (experts * rows) + 64,
      rowsMultiple: rows,
    });
    assert.equal(m.parts.length, 2);
    const maxRows = 16;
    const groups = {
      counts: createF32(device, experts),
      lists: createF32(device, experts * maxRows),
      maxRows,
    };
    const xb = uploadF32(device, x), yb = createF32(device, want.length);
    const idb = uploadU32(device, ids);
    const cfg = { ...moe, experts, used };
    const group = bindMoeGroup(device, cfg, maxRows, { ids: idb, ...groups }, { n });
    const op = createMoeMatMul(gpu, m, experts, { x: xb, y: yb, groups }, {
      xPairDiv: used,
      xStride: cols,
    });
    submitKernels(device, [group, { encode: (pass) => op.encode(pass, n) }]);
    const counts = await readU32(device, groups.counts, experts);
    assert.deepEqual([...counts], [0, 1, 2, 3].map((e) => ids.filter((i) => i === e).length));
    assertClose(await readF32(device, yb, want.length), want, { atol: 2e-4, rtol: 2e-4 }, "y");
    op.destroy();
    group.destroy();
    destroyMatrix(m);
    for (const b of [xb, yb, idb, groups.counts, groups.lists]) b.destroy();
  });
}

const moe: MoeConfig = {
  experts: 8,
  used: 2,
  expertFfn: 16,
  gating: "softmax",
  normalizeTopK: true,
};

Deno.test("moe route: the CPU's choices and weights, ties to the lower index, shared gate", async () => {
  const { device } = await createTestGpu();
  const n = 5, dim = 16;
  const logits = randomF32(n * moe.experts, 3, 3);
  logits.set([1, 2, 0, 2, 2, -1, 0, 0], 4 * moe.experts); // row 4: a three-way tie at 2
  const xb = randomF32(n * dim, 4), gateInp = randomF32(dim, 5);
  for (const normalizeTopK of [true, false]) {
    const cfg = { ...moe, normalizeTopK };
    const bufs = {
      logits: uploadF32(device, logits),
      ids: createF32(device, n * 2),
      weights: createF32(device, n * 2),
      shared: {
        xb: uploadF32(device, xb),
        gateInp: uploadF32(device, gateInp),
        scale: createF32(device, n),
      },
    };
    const route = bindMoeRoute(device, cfg, dim, bufs, { n });
    submitKernels(device, [route]);
    const ids = await readU32(device, bufs.ids, n * 2);
    const weights = await readF32(device, bufs.weights, n * 2);
    const scale = await readF32(device, bufs.shared.scale, n);
    const wantIds = new Int32Array(n * 2), wantW = new Float32Array(n * 2);
    for (let t = 0; t < n; t++) routeRow(cfg, logits.slice(), t, wantIds, wantW);
    assert.deepEqual([...ids], [...wantIds]);
    assert.deepEqual([...ids.subarray(8, 10)], [1, 3]);
    assertClose(weights, wantW, { atol: 1e-6, rtol: 1e-5 }, "weights");
    const wantScale = Float32Array.from({ length: n }, (_, t) => {
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += xb[t * dim + i] * gateInp[i];
      return 1 / (1 + Math.exp(-dot));
    });
    assertClose(scale, wantScale, { atol: 1e-6, rtol: 1e-5 }, "shared scale");
    route.destroy();
    for (const b of [bufs.logits, bufs.ids, bufs.weights, ...Object.values(bufs.shared)]) {
      b.destroy();
    }
  }
});

Deno.test("moe combine: hidden += Σ_k w_k · down_k + scale · shared", async () => {
  const { device } = await createTestGpu();
  const n = 3, dim = 8, used = 2;
  const hidden = randomF32(n * dim, 1), weights = randomF32(n * used, 2);
  const down = randomF32(n * used * dim, 3),
    scale = randomF32(n, 4),
    shared = randomF32(n * dim, 5);
  const want = hidden.slice();
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < dim; i++) {
      let acc = 0;
      for (let k = 0; k < used; k++) acc += weights[t * used + k] * down[(t * used + k) * dim + i];
      want[t * dim + i] += acc + scale[t] * shared[t * dim + i];
    }
  }
  const hb = uploadF32(device, hidden);
  const bufs = {
    hidden: hb,
    weights: uploadF32(device, weights),
    down: uploadF32(device, down),
    shared: { scale: uploadF32(device, scale), out: uploadF32(device, shared) },
  };
  const combine = bindMoeCombine(device, { ...moe, used }, dim, bufs, { n });
  submitKernels(device, [combine]);
  assertClose(await readF32(device, hb, n * dim), want, { atol: 1e-6, rtol: 1e-6 }, "hidden");
  combine.destroy();
});
