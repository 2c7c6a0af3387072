/**
 * RoPE on the GPU (rope.wgsl), in place over n tokens × heads at positions
 * pos0.., "normal" or NeoX pairing. Mirrors `rope` in inference/reference.ts.
 * The ROWS variant (`bindRopeRows`) turns the stacked rows of several
 * sequences, each by its own position (batch-forward.ts).
 *
 * The per-pair inverse frequencies (base, freq factors, YaRN's per-pair mix of
 * interpolated and original angles) are a small table made once per model by
 * `createRopeTable`, ending with the factor cos and sin are scaled by (YaRN's
 * mscale, else 1); positions and the linear scale are params, so one bound
 * kernel serves every token.
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";
import { pairFrequencyScale, ropeConstants, type RopeScaling } from "../../rope-scaling.ts";

const FILE = "rope.wgsl";
const WG = 64;

export type RopeStyle = "normal" | "neox";

/** Mirrors `struct Params` in rope.wgsl. */
export interface RopeParams {
  n: number; // tokens
  heads: number;
  headDim: number;
  ropeDim: number; // leading dims of each head that turn; even, ≤ headDim
  pos0: number; // position of token 0
  ropeScale?: number; // linear scaling: positions are divided by it (default 1)
  offset?: number; // element offset of token 0, head 0 (default 0)
  tokenStride?: number; // elements between tokens (default heads × headDim)
}

export interface RopeBuffers {
  v: GPUBuffer; // f32, rotated in place
  table: GPUBuffer; // (ropeDim / 2) f32 from createRopeTable
}

export function packRopeParams(p: RopeParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.heads],
    ["u32", p.headDim],
    ["u32", p.ropeDim],
    ["u32", p.pos0],
    ["u32", p.offset ?? 0],
    ["u32", p.tokenStride ?? p.heads * p.headDim],
    ["f32", 1 / (p.ropeScale ?? 1)],
  ]);
}

export function supportsRope(headDim: number, ropeDim: number): boolean {
  return ropeDim > 0 && ropeDim % 2 === 0 && ropeDim <= headDim;
}

/**
 * base^(-2i/ropeDim) / freqFactors[i] for each pair, in f64 then rounded once; with YaRN
 * `scaling`, times the pair's mix of original and interpolated angle over the linear scale the
 * kernel applies to every pair. After the pairs: the factor cos and sin are scaled by.
 */
export function ropeInverseFrequencies(
  ropeDim: number,
  ropeBase: number,
  freqFactors?: Float32Array,
  scaling?: RopeScaling,
): Float32Array {
  const half = ropeDim / 2;
  if (freqFactors && freqFactors.length < half) {
    throw new Error(`rope: ${freqFactors.length} freq factors for ${half} pairs`);
  }
  const c = scaling && ropeConstants(ropeDim, ropeBase, scaling);
  const out = new Float32Array(half + 1);
  for (let i = 0; i < half; i++) {
    const f = Math.pow(ropeBase, (-2 * i) / ropeDim);
    const yarn = c && c.extFactor !== 0 ? pairFrequencyScale(c, i) / c.freqScale : 1;
    out[i] = (freqFactors ? f / freqFactors[i] : f) * yarn;
  }
  out[half] = c ? c.mscale : 1;
  return out;
}

/** The inverse-frequency table as a storage buffer (once per model). */
export function createRopeTable(
  device: GPUDevice,
  ropeDim: number,
  ropeBase: number,
  freqFactors?: Float32Array,
  scaling?: RopeScaling,
): GPUBuffer {
  const table = ropeInverseFrequencies(ropeDim, ropeBase, freqFactors, scaling);
  const buffer = device.createBuffer({
    label: "rope inverse frequencies",
    size: Math.max(16, table.byteLength),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  new Float32Array(buffer.getMappedRange()).set(table);
  buffer.unmap();
  return buffer;
}

function defines(style: RopeStyle, rows = false) {
  return { WG, NEOX: style === "neox", ROWS: rows };
}

export async function prepareRope(device: GPUDevice, style: RopeStyle): Promise<void> {
  await kernelPipelineChecked(device, "rope", FILE, defines(style));
}

export function bindRope(
  device: GPUDevice,
  style: RopeStyle,
  bufs: RopeBuffers,
  params: RopeParams,
): BoundKernel<RopeParams> {
  if (!supportsRope(params.headDim, params.ropeDim)) {
    throw new Error(`rope: ropeDim ${params.ropeDim} must be even and ≤ headDim ${params.headDim}`);
  }
  return bindKernel(device, {
    label: `rope ${style}`,
    pipeline: kernelPipeline(device, "rope", FILE, defines(style)),
    buffers: [bufs.table, bufs.v],
    pack: packRopeParams,
    workgroups: (p) => Math.ceil((p.n * p.heads * (p.ropeDim / 2)) / WG),
  }, params);
}

// ---------------------------------------------------------------------------
// Stacked rows of several sequences (ROWS): each row turns by its own
// position, read from the (slot, position) row table the batched forward pass
// writes once per step.

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
    pipeline: kernelPipeline(device, "rope", FILE, defines(style, true)),
    buffers: [bufs.table, bufs.rows, bufs.v],
    pack: packRopeRowsParams,
    workgroups: (p) => Math.ceil((p.n * p.heads * (p.ropeDim / 2)) / WG),
  }, params);
}
