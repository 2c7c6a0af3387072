/**
 * qwen35moe's layers on the GPU beyond the usual products (delta_net.wgsl, gated_attention.wgsl):
 * the linear-attention layer's conv, gates and delta rule with each slot's recurrent state on
 * the device, and the full-attention layers' query/gate split and output gate. Mirrors
 * inference/delta-net.ts and inference/gated-attention.ts.
 */
import type { RecurrentConfig } from "../../recurrent-config.ts";
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";

const FILE = "delta_net.wgsl";
const GATED_FILE = "gated_attention.wgsl";

/** Rows of one step; `rows` (the (slot, position) table) when several sequences are stacked. */
export interface DeltaNetShape {
  n: number;
}

function pack(r: RecurrentConfig, n: number, eps: number): ArrayBuffer {
  return packFields([
    ["u32", n],
    ["u32", r.convDim],
    ["u32", r.convKernel],
    ["u32", r.kHeads],
    ["u32", r.vHeads],
    ["f32", eps],
  ]);
}

/** The workgroup width of the delta rule: the head width rounded up to a power of two. */
function deltaWidth(r: RecurrentConfig): number {
  let wg = 1;
  while (wg < r.headDim) wg *= 2;
  if (wg > 256) throw new Error(`delta net: head width ${r.headDim} exceeds 256`);
  return wg;
}

type Variant = "CONV" | "GATES" | "DELTA";

function defines(r: RecurrentConfig, variant: Variant, rows: boolean) {
  return { [variant]: true, ROWS: rows, D: r.headDim, WG: deltaWidth(r) };
}

/** Compiles every variant now (setup, tests): WGSL errors surface here with line numbers. */
export async function prepareDeltaNet(device: GPUDevice, r: RecurrentConfig): Promise<void> {
  for (const v of ["CONV", "GATES", "DELTA"] as const) {
    for (const rows of v === "GATES" ? [false] : [false, true]) {
      await kernelPipelineChecked(device, `delta_net_${v}`, FILE, defines(r, v, rows));
    }
  }
  for (const split of [false, true]) {
    await kernelPipelineChecked(device, "gated_attention", GATED_FILE, { SPLIT: split });
  }
}

/** A linear layer's state buffers: per slot, the conv's last inputs and the delta rule's S. */
export interface RecurrentBuffers {
  conv: GPUBuffer; // (slots, convDim, convKernel − 1)
  delta: GPUBuffer; // (slots, vHeads, headDim, headDim)
}

export function recurrentFloats(r: RecurrentConfig) {
  return { conv: r.convDim * (r.convKernel - 1), delta: r.vHeads * r.headDim * r.headDim };
}

export function createRecurrentBuffers(
  device: GPUDevice,
  r: RecurrentConfig,
  slots: number,
  label: string,
): RecurrentBuffers {
  const f = recurrentFloats(r);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const make = (floats: number, what: string) =>
    device.createBuffer({ label: `${label} ${what}`, size: Math.max(16, floats * 4), usage });
  return { conv: make(slots * f.conv, "conv state"), delta: make(slots * f.delta, "delta state") };
}

/** Zeroes slot `slot`'s state (a new sequence, or a rewind to 0). */
export function clearRecurrentSlot(
  encoder: GPUCommandEncoder,
  r: RecurrentConfig,
  b: RecurrentBuffers,
  slot: number,
): void {
  const f = recurrentFloats(r);
  if (f.conv > 0) encoder.clearBuffer(b.conv, slot * f.conv * 4, f.conv * 4);
  encoder.clearBuffer(b.delta, slot * f.delta * 4, f.delta * 4);
}

export interface ConvBuffers {
  conv: GPUBuffer; // (convDim · convKernel) the layer's taps
  state: GPUBuffer;
  qkv: GPUBuffer; // (n, convDim) in: the projection; out: silu(conv)
  rows?: GPUBuffer;
}

export function bindConv(
  device: GPUDevice,
  r: RecurrentConfig,
  b: ConvBuffers,
  shape: DeltaNetShape,
): BoundKernel<DeltaNetShape> {
  const rows = b.rows !== undefined;
  return bindKernel(device, {
    label: "delta net conv",
    pipeline: kernelPipeline(device, "delta_net_CONV", FILE, defines(r, "CONV", rows)),
    buffers: rows ? [b.conv, b.state, b.qkv, b.rows!] : [b.conv, b.state, b.qkv],
    pack: (p) => pack(r, p.n, 0),
    workgroups: () => Math.ceil(r.convDim / 64),
  }, shape);
}

export interface GateBuffers {
  beta: GPUBuffer; // (n, vHeads) in: W_β·x; out: sigmoid
  alpha: GPUBuffer; // (n, vHeads) in: W_α·x; out: g = softplus(W_α·x + dt) · A
  dtBias: GPUBuffer;
  a: GPUBuffer;
}

export function bindGates(
  device: GPUDevice,
  r: RecurrentConfig,
  b: GateBuffers,
  shape: DeltaNetShape,
): BoundKernel<DeltaNetShape> {
  return bindKernel(device, {
    label: "delta net gates",
    pipeline: kernelPipeline(device, "delta_net_GATES", FILE, defines(r, "GATES", false)),
    buffers: [b.beta, b.alpha, b.dtBias, b.a],
    pack: (p) => pack(r, p.n, 0),
    workgroups: (p) => Math.ceil((p.n * r.vHeads) / 64),
  }, shape);
}

export interface DeltaBuffers {
  qkv: GPUBuffer; // (n, convDim) after the conv
  beta: GPUBuffer; // (n, vHeads) after the gates
  gate: GPUBuffer; // (n, vHeads) g, after the gates
  norm: GPUBuffer; // (headDim) ssm_norm
  state: GPUBuffer;
  z: GPUBuffer; // (n, vHeads · headDim) in: W_gate·x; out: the layer's output before W_out
  rows?: GPUBuffer;
}

export function bindDelta(
  device: GPUDevice,
  r: RecurrentConfig,
  b: DeltaBuffers,
  shape: DeltaNetShape,
  eps: number,
): BoundKernel<DeltaNetShape> {
  const rows = b.rows !== undefined;
  const buffers = [b.qkv, b.beta, b.gate, b.norm, b.state, b.z];
  return bindKernel(device, {
    label: "delta net rule",
    pipeline: kernelPipeline(device, "delta_net_DELTA", FILE, defines(r, "DELTA", rows)),
    buffers: rows ? [...buffers, b.rows!] : buffers,
    pack: (p) => pack(r, p.n, eps),
    workgroups: () => r.vHeads,
  }, shape);
}

export interface GatedShape {
  n: number;
  heads: number;
  headDim: number;
}

function packGated(p: GatedShape): ArrayBuffer {
  return packFields([["u32", p.n * p.heads * p.headDim], ["u32", p.headDim]]);
}

/** W_q's output (n, heads · 2 · headDim) split into the queries and the output gates. */
export function bindSplitGate(
  device: GPUDevice,
  b: { qg: GPUBuffer; q: GPUBuffer; gate: GPUBuffer },
  shape: GatedShape,
): BoundKernel<GatedShape> {
  return bindKernel(device, {
    label: "gated attention split",
    pipeline: kernelPipeline(device, "gated_attention", GATED_FILE, { SPLIT: true }),
    buffers: [b.qg, b.q, b.gate],
    pack: packGated,
    workgroups: (p) => Math.ceil((p.n * p.heads * p.headDim) / 64),
  }, shape);
}

/** att ← att · sigmoid(gate). */
export function bindOutputGate(
  device: GPUDevice,
  b: { gate: GPUBuffer; att: GPUBuffer },
  shape: GatedShape,
): BoundKernel<GatedShape> {
  return bindKernel(device, {
    label: "gated attention output",
    pipeline: kernelPipeline(device, "gated_attention", GATED_FILE, { SPLIT: false }),
    buffers: [b.gate, b.att],
    pack: packGated,
    workgroups: (p) => Math.ceil((p.n * p.heads * p.headDim) / 64),
  }, shape);
}
