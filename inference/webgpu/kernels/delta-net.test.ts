import {
  assertClose,
  createTestGpu,
  randomF32,
  readF32,
  uploadF32,
} from "../../../tests/support/gpu.ts";
import type { RecurrentConfig } from "../../recurrent-config.ts";
import { deltaNetRow } from "../../delta-net.ts";
import { submitKernels } from "./bound-kernel.ts";
import {
  bindConv,
  bindDelta,
  bindGates,
  bindOutputGate,
  bindSplitGate,
  createRecurrentBuffers,
  prepareDeltaNet,
  recurrentFloats,
} from "./delta-net.ts";

const R: RecurrentConfig = {
  recurrentLayers: [true],
  convKernel: 4,
  kHeads: 2,
  vHeads: 4,
  headDim: 32,
  convDim: (2 * 2 + 4) * 32,
};
const EPS = 1e-6;
const VDIM = R.vHeads * R.headDim;

interface Inputs {
  qkv: Float32Array;
  z: Float32Array;
  beta: Float32Array;
  alpha: Float32Array;
  conv: Float32Array;
  dtBias: Float32Array;
  a: Float32Array;
  norm: Float32Array;
}

function inputs(n: number, seed: number): Inputs {
  return {
    qkv: randomF32(n * R.convDim, seed, 1.5),
    z: randomF32(n * VDIM, seed + 1, 2),
    beta: randomF32(n * R.vHeads, seed + 2, 2),
    alpha: randomF32(n * R.vHeads, seed + 3, 2),
    conv: randomF32(R.convDim * R.convKernel, seed + 4, 0.6),
    dtBias: randomF32(R.vHeads, seed + 5, 1),
    a: Float32Array.from(randomF32(R.vHeads, seed + 6, 1), (v) => v - 2),
    norm: Float32Array.from(randomF32(R.headDim, seed + 7, 0.2), (v) => v + 1),
  };
}

/** The CPU layer after its projections (inference/delta-net.ts), each row in its slot's state. */
function cpu(x: Inputs, slots: number[]): Float32Array {
  const f = recurrentFloats(R);
  const conv = Array.from({ length: 2 }, () => new Float32Array(f.conv));
  const delta = Array.from({ length: 2 }, () => new Float32Array(f.delta));
  const qkv = x.qkv.slice(), out = new Float32Array(slots.length * VDIM);
  slots.forEach((slot, t) => {
    const state = { conv: conv[slot], delta: delta[slot] };
    deltaNetRow(R, x, state, { ...x, qkv }, t, EPS, out);
  });
  return out;
}

async function gpu(x: Inputs, slots: number[], stacked: boolean): Promise<Float32Array> {
  const { device } = await createTestGpu();
  await prepareDeltaNet(device, R);
  const n = slots.length;
  const state = createRecurrentBuffers(device, R, 2, "test");
  const rows = stacked
    ? uploadF32(device, new Float32Array(new Uint32Array(slots.flatMap((s) => [s, 0])).buffer))
    : undefined;
  const qkv = uploadF32(device, x.qkv), z = uploadF32(device, x.z);
  const beta = uploadF32(device, x.beta), alpha = uploadF32(device, x.alpha);
  const shape = { n };
  submitKernels(device, [
    bindConv(device, R, { conv: uploadF32(device, x.conv), state: state.conv, qkv, rows }, shape),
    bindGates(device, R, {
      beta,
      alpha,
      dtBias: uploadF32(device, x.dtBias),
      a: uploadF32(device, x.a),
    }, shape),
    bindDelta(
      device,
      R,
      {
        qkv,
        beta,
        gate: alpha,
        norm: uploadF32(device, x.norm),
        state: state.delta,
        z,
        rows,
      },
      shape,
      EPS,
    ),
  ]);
  return await readF32(device, z, n * VDIM);
}

const TOL = { atol: 2e-5, rtol: 2e-4 };

Deno.test("delta net kernels: one sequence's rows match the CPU layer", async () => {
  const x = inputs(7, 1);
  const slots = [0, 0, 0, 0, 0, 0, 0];
  assertClose(await gpu(x, slots, false), cpu(x, slots), TOL, "one sequence");
});

Deno.test("delta net kernels: two sequences' rows interleaved keep their own states", async () => {
  const x = inputs(8, 11);
  const slots = [0, 1, 1, 0, 0, 1, 0, 1];
  assertClose(await gpu(x, slots, true), cpu(x, slots), TOL, "two slots");
});

Deno.test("gated attention kernels: split W_q's rows, gate the output", async () => {
  const { device } = await createTestGpu();
  await prepareDeltaNet(device, R);
  const n = 3, heads = 4, headDim = 16, width = heads * headDim;
  const qgv = randomF32(n * 2 * width, 21, 2), attv = randomF32(n * width, 22, 1);
  const qg = uploadF32(device, qgv), att = uploadF32(device, attv);
  const q = uploadF32(device, new Float32Array(n * width));
  const gate = uploadF32(device, new Float32Array(n * width));
  const shape = { n, heads, headDim };
  submitKernels(device, [
    bindSplitGate(device, { qg, q, gate }, shape),
    bindOutputGate(device, { gate, att }, shape),
  ]);
  const wantQ = new Float32Array(n * width), wantAtt = attv.slice();
  for (let r = 0; r < n * heads; r++) {
    for (let e = 0; e < headDim; e++) {
      wantQ[r * headDim + e] = qgv[r * 2 * headDim + e];
      const g = qgv[r * 2 * headDim + headDim + e];
      wantAtt[r * headDim + e] *= 1 / (1 + Math.exp(-g));
    }
  }
  assertClose(await readF32(device, q, n * width), wantQ, { atol: 0, rtol: 0 }, "q");
  assertClose(await readF32(device, att, n * width), wantAtt, { atol: 1e-6, rtol: 1e-5 }, "att");
});
