/**
 * qwen35moe's layers on the GPU (inference/delta-net.ts and inference/gated-attention.ts are
 * the references): a linear-attention layer's whole attention block, with each sequence's
 * recurrent state on the device, and the full-attention layers' query/gate split and output
 * gate around the usual attention. forward.ts builds them into a layer stack; its placement
 * owns the states (one slot for a session, one per batch slot).
 */
import type { ModelConfig } from "../model-config.ts";
import type { Gpu } from "./device.ts";
import type { GpuLayerWeights } from "./load-weights.ts";
import { type GpuScratch, type Product, product, scratchBuffer } from "./forward.ts";
import { bindRowNorm } from "./kernels/row_norm.ts";
import type { BoundKernel } from "./kernels/bound-kernel.ts";
import {
  bindConv,
  bindDelta,
  bindGates,
  bindOutputGate,
  bindSplitGate,
  clearRecurrentSlot,
  createRecurrentBuffers,
  type DeltaNetShape,
  type GatedShape,
  type RecurrentBuffers,
} from "./kernels/delta-net.ts";

/** The buffers the hybrid layers of a stack share (one step's rows at most). */
export interface HybridScratch {
  qg: GPUBuffer; // (maxBatch, heads · 2 · headDim) W_q's output: queries and gates
  gate: GPUBuffer; // (maxBatch, heads · headDim)
  qkv: GPUBuffer; // (maxBatch, convDim)
  z: GPUBuffer; // (maxBatch, vHeads · headDim)
  beta: GPUBuffer; // (maxBatch, vHeads)
  alpha: GPUBuffer; // (maxBatch, vHeads)
}

export function createHybridScratch(
  device: GPUDevice,
  config: ModelConfig,
  maxBatch: number,
): HybridScratch {
  const r = config.recurrent!;
  const q = config.heads * config.headDim;
  const make = (floats: number, label: string) => scratchBuffer(device, maxBatch * floats, label);
  return {
    qg: make(2 * q, "hybrid q+gate"),
    gate: make(q, "hybrid gate"),
    qkv: make(r.convDim, "delta net qkv"),
    z: make(r.vHeads * r.headDim, "delta net z"),
    beta: make(r.vHeads, "delta net beta"),
    alpha: make(r.vHeads, "delta net alpha"),
  };
}

export function destroyHybridScratch(s: HybridScratch): void {
  for (const b of Object.values(s)) b.destroy();
}

/** The widest per-row scratch the hybrid layers add, in floats (forward.ts maxBatchFor). */
export function hybridRowFloats(config: ModelConfig): number {
  const r = config.recurrent;
  return r ? Math.max(2 * config.heads * config.headDim, r.convDim) : 0;
}

/**
 * The recurrent states of a placement's linear layers: per layer (index within the range) the
 * buffers of `slots` sequences, and the rows' slot table when several are stacked.
 */
export interface RecurrentStates {
  layers: (RecurrentBuffers | undefined)[];
  rows?: GPUBuffer;
  /** Zeroes slot `slot` in every linear layer (a new sequence, a rewind to 0). */
  clear(slot: number): void;
  destroy(): void;
}

export function createRecurrentStates(
  gpu: Gpu,
  config: ModelConfig,
  layerStart: number,
  layerEnd: number,
  slots: number,
  rows?: GPUBuffer,
): RecurrentStates | undefined {
  const r = config.recurrent;
  if (!r) return undefined;
  const { device } = gpu;
  const layers: (RecurrentBuffers | undefined)[] = [];
  for (let l = layerStart; l < layerEnd; l++) {
    layers.push(
      r.recurrentLayers[l] ? createRecurrentBuffers(device, r, slots, `layer ${l}`) : undefined,
    );
  }
  return {
    layers,
    rows,
    clear(slot) {
      const enc = device.createCommandEncoder({ label: "clear recurrent state" });
      for (const b of layers) if (b) clearRecurrentSlot(enc, r, b, slot);
      device.queue.submit([enc.finish()]);
    },
    destroy() {
      for (const b of layers) {
        b?.conv.destroy();
        b?.delta.destroy();
      }
    },
  };
}

/**
 * Refuses a rewind a recurrent state cannot honour (inference/recurrent-state.ts says why):
 * true when the state must be cleared (a rewind to 0 from further on).
 */
export function recurrentRewind(config: ModelConfig, position: number, to: number): boolean {
  if (!config.recurrent || to === position) return false;
  if (to !== 0) {
    throw new Error(
      `cannot rewind to ${to}: this model's linear-attention layers keep a recurrent state of ` +
        `all ${position} positions, which cannot be moved back; rewind to 0 and run the ` +
        "sequence again",
    );
  }
  return true;
}

export interface LinearLayer {
  /** Records the attention block of n rows of scratch hidden (norm to residual). */
  encode(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
}

export function createLinearLayer(
  gpu: Gpu,
  config: ModelConfig,
  w: GpuLayerWeights,
  scratch: GpuScratch,
  s: HybridScratch,
  state: RecurrentBuffers,
  rows: GPUBuffer | undefined,
): LinearLayer {
  const { device } = gpu;
  const r = config.recurrent!;
  const { dim, normEps: eps } = config;
  const l = w.linear!;
  const { hidden, xb } = scratch;
  const norm = bindRowNorm(device, { x: hidden, weight: w.attnNorm, out: xb }, {
    n: dim,
    rows: 1,
    eps,
  });
  const products: Product[] = [
    product(gpu, l.wqkv, xb, s.qkv, {}),
    product(gpu, l.wz, xb, s.z, {}),
    product(gpu, l.wBeta, xb, s.beta, {}),
    product(gpu, l.wAlpha, xb, s.alpha, {}),
  ];
  const shape: DeltaNetShape = { n: 1 };
  const steps: BoundKernel<DeltaNetShape>[] = [
    bindConv(device, r, { conv: l.conv, state: state.conv, qkv: s.qkv, rows }, shape),
    bindGates(device, r, { beta: s.beta, alpha: s.alpha, dtBias: l.dtBias, a: l.a }, shape),
    bindDelta(
      device,
      r,
      {
        qkv: s.qkv,
        beta: s.beta,
        gate: s.alpha,
        norm: l.norm,
        state: state.delta,
        z: s.z,
        rows,
      },
      shape,
      eps,
    ),
  ];
  const out = product(gpu, l.wOut, s.z, hidden, { accumulate: true }); // residual fused
  return {
    encode(pass, n) {
      norm.update({ n: dim, rows: n, eps });
      norm.encode(pass);
      for (const p of products) p.encode(pass, n);
      for (const k of steps) {
        k.update({ n });
        k.encode(pass);
      }
      out.encode(pass, n);
    },
    destroy() {
      norm.destroy();
      for (const p of [...products, out]) p.destroy();
      for (const k of steps) k.destroy();
    },
  };
}

export interface GatedQuery {
  /** After W_q into scratch qg: the queries into q, the gates aside. */
  split(pass: GPUComputePassEncoder, n: number): void;
  /** Before W_o: att ← att · sigmoid(gate). */
  gate(pass: GPUComputePassEncoder, n: number): void;
  destroy(): void;
}

export function createGatedQuery(
  device: GPUDevice,
  config: ModelConfig,
  scratch: GpuScratch,
  s: HybridScratch,
): GatedQuery {
  const shape: GatedShape = { n: 1, heads: config.heads, headDim: config.headDim };
  const split = bindSplitGate(device, { qg: s.qg, q: scratch.q, gate: s.gate }, shape);
  const gate = bindOutputGate(device, { gate: s.gate, att: scratch.att }, shape);
  return {
    split(pass, n) {
      split.update({ ...shape, n });
      split.encode(pass);
    },
    gate(pass, n) {
      gate.update({ ...shape, n });
      gate.encode(pass);
    },
    destroy() {
      split.destroy();
      gate.destroy();
    },
  };
}
