/**
 * RoPE over stacked rows of several sequences (rope.wgsl with ROWS): each row
 * turns by its own position, read from the (slot, position) row table the
 * batched forward pass writes once per step. Mirrors `rope` in
 * inference/reference.ts, as rope.ts does for one sequence.
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";
import { type RopeStyle, supportsRope } from "./rope.ts";

const FILE = "rope.wgsl";
const WG = 64;

/** Mirrors the ROWS `struct Params` in rope.wgsl. */
export interface RopeRowsParams {
  n: number; // rows
  heads: number;
  headDim: number;
  ropeDim: number;
  ropeScale?: number; // default 1
}

export interface RopeRowsBuffers {
  v: GPUBuffer; // (n, heads × headDim) f32, rotated in place
  table: GPUBuffer; // from createRopeTable
  rows: GPUBuffer; // (n, 2) u32: slot, position
}

export function packRopeRowsParams(p: RopeRowsParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.heads],
    ["u32", p.headDim],
    ["u32", p.ropeDim],
    ["u32", p.heads * p.headDim],
    ["f32", 1 / (p.ropeScale ?? 1)],
  ]);
}

const defines = (style: RopeStyle) => ({ WG, NEOX: style === "neox", ROWS: true });

export async function prepareRopeRows(device: GPUDevice, style: RopeStyle): Promise<void> {
  await kernelPipelineChecked(device, "rope_rows", FILE, defines(style));
}

export function bindRopeRows(
  device: GPUDevice,
  style: RopeStyle,
  bufs: RopeRowsBuffers,
  params: RopeRowsParams,
): BoundKernel<RopeRowsParams> {
  if (!supportsRope(params.headDim, params.ropeDim)) {
    throw new Error(`rope: ropeDim ${params.ropeDim} must be even and ≤ headDim ${params.headDim}`);
  }
  return bindKernel(device, {
    label: `rope rows ${style}`,
    pipeline: kernelPipeline(device, "rope_rows", FILE, defines(style)),
    buffers: [bufs.table, bufs.rows, bufs.v],
    pack: packRopeRowsParams,
    workgroups: (p) => Math.ceil((p.n * p.heads * (p.ropeDim / 2)) / WG),
  }, params);
}
