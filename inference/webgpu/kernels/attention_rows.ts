/**
 * Attention over stacked rows of several sequences (attention.wgsl, ROWS):
 * each row names its cache slot and position in a (slot, position) u32
 * table. A layer's cache holds all slots (slot s owns rows s·ctx ..), made
 * by `createKvCache` with ctxSize = slots × ctx. `bindKvWriteRows` puts each
 * row's new key / value at its slot and position; `bindAttentionRows` runs
 * causal GQA attention of each row over its own slot only.
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";
import {
  attentionDefines,
  type AttentionLayout,
  attentionUnsupported,
  attentionWorkgroups,
} from "./attention.ts";

const FILE = "attention.wgsl";
const WG = 64;
const WRITE_DEFINES = { WG, KV_WRITE: true, ROWS: true };

/** Mirrors the KV_WRITE `struct Params`. */
export interface KvWriteRowsParams {
  n: number; // rows
  kDim: number;
  vDim: number;
  ctx: number; // cache rows per slot
}

export interface KvWriteRowsBuffers {
  rows: GPUBuffer; // (n, 2) u32: slot, position
  k: GPUBuffer; // (n, kDim) after RoPE
  v: GPUBuffer; // (n, vDim)
  keys: GPUBuffer; // this layer's cache, all slots
  values: GPUBuffer;
}

/** Mirrors the attention `struct Params`. */
export interface AttentionRowsParams {
  n: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  ctx: number;
  scale?: number; // default 1 / sqrt(headDim)
}

export interface AttentionRowsBuffers {
  rows: GPUBuffer;
  q: GPUBuffer; // (n, heads × headDim) after RoPE
  keys: GPUBuffer;
  values: GPUBuffer;
  out: GPUBuffer; // (n, heads × valueDim)
}

export function packKvWriteRowsParams(p: KvWriteRowsParams): ArrayBuffer {
  return packFields([["u32", p.n], ["u32", p.kDim], ["u32", p.vDim], ["u32", p.ctx]]);
}

export function packAttentionRowsParams(p: AttentionRowsParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.heads],
    ["u32", p.kvHeads],
    ["u32", p.headDim],
    ["u32", p.valueDim],
    ["u32", p.ctx],
    ["f32", p.scale ?? 1 / Math.sqrt(p.headDim)],
  ]);
}

/** Compiles both variants now (setup, tests): WGSL errors surface with line numbers. */
export async function prepareAttentionRows(
  device: GPUDevice,
  shape: Pick<AttentionRowsParams, "headDim" | "valueDim"> = { headDim: 64, valueDim: 64 },
): Promise<void> {
  for (const layout of ["workgroup", "lane"] as const) {
    await kernelPipelineChecked(
      device,
      "attention_rows",
      FILE,
      attentionDefines(layout, shape, true),
    );
  }
  await kernelPipelineChecked(device, "attention_rows", FILE, WRITE_DEFINES);
}

export function bindKvWriteRows(
  device: GPUDevice,
  bufs: KvWriteRowsBuffers,
  params: KvWriteRowsParams,
): BoundKernel<KvWriteRowsParams> {
  return bindKernel(device, {
    label: "kv write rows",
    pipeline: kernelPipeline(device, "attention_rows", FILE, WRITE_DEFINES),
    buffers: [bufs.rows, bufs.k, bufs.v, bufs.keys, bufs.values],
    pack: packKvWriteRowsParams,
    workgroups: (p) => Math.ceil((p.n * Math.max(p.kDim, p.vDim)) / WG),
  }, params);
}

export function bindAttentionRows(
  device: GPUDevice,
  bufs: AttentionRowsBuffers,
  params: AttentionRowsParams,
  layout: AttentionLayout = "workgroup",
): BoundKernel<AttentionRowsParams> {
  const why = attentionUnsupported(params);
  if (why) throw new Error(`attention: ${why}`);
  return bindKernel(device, {
    label: "attention rows",
    pipeline: kernelPipeline(
      device,
      "attention_rows",
      FILE,
      attentionDefines(layout, params, true),
    ),
    buffers: [bufs.rows, bufs.q, bufs.keys, bufs.values, bufs.out],
    pack: packAttentionRowsParams,
    workgroups: (p) => attentionWorkgroups(layout, p.n * p.heads),
  }, params);
}
