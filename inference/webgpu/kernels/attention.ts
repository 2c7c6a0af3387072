/**
 * Attention on the GPU (attention.wgsl): the KV cache lives on the device,
 * `bindKvWrite` appends the new key/value rows at pos0.., and `bindAttention`
 * runs causal GQA attention for n query positions over it (n = 1: decode).
 * Mirrors the attention loop of `forwardLayers` in inference/reference.ts.
 * The ROWS variants (`bindKvWriteRows`, `bindAttentionRows`) do the same for
 * the stacked rows of several sequences (batch-forward.ts).
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  kernelSource,
  packFields,
} from "./bound-kernel.ts";
import { getPipeline, getPipelineChecked } from "../pipelines.ts";
import { definesKey } from "../wgsl.ts";
import { bindLaneChoice, LANE_GENERATED, LANE_WG, laneCode } from "./attention-lane.ts";

const FILE = "attention.wgsl";
const WG = 64;
/** Workgroup arrays hold one query head and one value accumulator. */
export const MAX_HEAD_DIM = 256;
export const MAX_VALUE_DIM = 256;

/** Keys and values of each layer: (ctxSize, kvHeads × headDim) and (ctxSize, kvHeads × valueDim) f32. */
export interface KvCache {
  ctxSize: number;
  kDim: number; // kvHeads * headDim
  vDim: number; // kvHeads * valueDim
  keys: GPUBuffer[]; // per layer
  values: GPUBuffer[]; // per layer
}

export interface KvShape {
  layers: number;
  ctxSize: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  /** Per layer, whether it keeps a cache (false: a qwen35moe linear layer, a placeholder). */
  cached?: readonly boolean[];
  /** Per layer, the rows its cache holds where not ctxSize (a sliding-window layer's ring). */
  rows?: readonly number[];
}

/** Zeroed cache buffers; each layer's keys / values must fit one storage binding. */
export function createKvCache(device: GPUDevice, s: KvShape): KvCache {
  const kDim = s.kvHeads * s.headDim, vDim = s.kvHeads * s.valueDim;
  const limit = device.limits.maxStorageBufferBindingSize;
  const largest = s.ctxSize * Math.max(kDim, vDim) * 4;
  if (largest > limit) {
    throw new Error(
      `KV cache: one layer's ${s.ctxSize} positions × ${Math.max(kDim, vDim)} values ` +
        `(${largest} bytes) exceed the storage binding limit ${limit}; use a smaller context`,
    );
  }
  const make = (label: string, width: number) =>
    Array.from({ length: s.layers }, (_, i) =>
      device.createBuffer({
        label: `${label} ${i}`,
        size: s.cached?.[i] === false ? 16 : Math.max(16, (s.rows?.[i] ?? s.ctxSize) * width * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      }));
  return {
    ctxSize: s.ctxSize,
    kDim,
    vDim,
    keys: make("key cache", kDim),
    values: make("value cache", vDim),
  };
}

export function destroyKvCache(cache: KvCache): void {
  for (const b of [...cache.keys, ...cache.values]) b.destroy();
}

// ---------------------------------------------------------------------------
// Writing new rows into the cache

/** Mirrors the KV_WRITE `struct Params`. */
export interface KvWriteParams {
  n: number; // new positions
  kDim: number;
  vDim: number;
  pos0: number; // first cache row written
  kOffset?: number; // element offset of the first new key row
  kStride?: number; // elements between new key rows (default kDim)
  vOffset?: number;
  vStride?: number;
  ring?: number; // a ring layer's rows: position p at row p % ring (default 0: row p)
}

export interface KvWriteBuffers {
  k: GPUBuffer; // new key rows (after RoPE)
  v: GPUBuffer; // new value rows
  keys: GPUBuffer; // this layer's cache
  values: GPUBuffer;
}

export function packKvWriteParams(p: KvWriteParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.kDim],
    ["u32", p.vDim],
    ["u32", p.pos0],
    ["u32", p.kOffset ?? 0],
    ["u32", p.kStride ?? p.kDim],
    ["u32", p.vOffset ?? 0],
    ["u32", p.vStride ?? p.vDim],
    ["u32", p.ring ?? 0],
  ]);
}

export function bindKvWrite(
  device: GPUDevice,
  bufs: KvWriteBuffers,
  params: KvWriteParams,
): BoundKernel<KvWriteParams> {
  // The cache buffers know their size: a write past the end would be silently dropped.
  const check = (p: KvWriteParams) => {
    const ctx = Math.min(bufs.keys.size / (4 * p.kDim), bufs.values.size / (4 * p.vDim));
    if (p.ring ? p.ring > ctx || p.n > p.ring : p.pos0 + p.n > ctx) {
      throw new Error(`context full: ${p.pos0} + ${p.n} positions exceed the KV cache (${ctx})`);
    }
    return packKvWriteParams(p);
  };
  check(params);
  return bindKernel(device, {
    label: "kv write",
    pipeline: kernelPipeline(device, "attention", FILE, { WG, KV_WRITE: true }),
    buffers: [bufs.k, bufs.v, bufs.keys, bufs.values],
    pack: check,
    workgroups: (p) => Math.ceil((p.n * Math.max(p.kDim, p.vDim)) / WG),
  }, params);
}

// ---------------------------------------------------------------------------
// Attention

/** Mirrors the attention `struct Params`. */
export interface AttentionParams {
  n: number; // query positions
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  pos0: number; // the cache must already hold positions 0 .. pos0 + n - 1
  scale?: number; // default 1 / sqrt(headDim)
  window?: number; // sliding window: the last `window` positions only (default 0: all)
  ring?: number; // a ring layer's rows: position p at row p % ring (default 0: row p)
  qOffset?: number;
  qStride?: number; // default heads * headDim
  outOffset?: number;
  outStride?: number; // default heads * valueDim
}

export interface AttentionBuffers {
  q: GPUBuffer; // (n, heads * headDim) after RoPE
  keys: GPUBuffer; // this layer's cache
  values: GPUBuffer;
  out: GPUBuffer; // (n, heads * valueDim)
  sinks?: GPUBuffer; // (heads) gpt-oss: each head's sink logit, counted in its softmax
}

export function packAttentionParams(p: AttentionParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.heads],
    ["u32", p.kvHeads],
    ["u32", p.headDim],
    ["u32", p.valueDim],
    ["u32", p.pos0],
    ["u32", p.qOffset ?? 0],
    ["u32", p.qStride ?? p.heads * p.headDim],
    ["u32", p.outOffset ?? 0],
    ["u32", p.outStride ?? p.heads * p.valueDim],
    ["f32", p.scale ?? 1 / Math.sqrt(p.headDim)],
    ["u32", p.window ?? 0],
    ["u32", p.ring ?? 0],
  ]);
}

/** Why this shape can't run here, or undefined when it can. */
export function attentionUnsupported(
  s: Pick<AttentionParams, "heads" | "kvHeads" | "headDim" | "valueDim">,
): string | undefined {
  if (s.kvHeads < 1 || s.heads % s.kvHeads !== 0) {
    return `${s.heads} query heads are not a multiple of ${s.kvHeads} kv heads`;
  }
  if (s.headDim < 1 || s.headDim > MAX_HEAD_DIM) return `headDim ${s.headDim} > ${MAX_HEAD_DIM}`;
  if (s.valueDim < 1 || s.valueDim > MAX_VALUE_DIM) {
    return `valueDim ${s.valueDim} > ${MAX_VALUE_DIM}`;
  }
  // The kernel reads keys and values as vec4s.
  if (s.headDim % 4 !== 0) return `headDim ${s.headDim} is not a multiple of 4`;
  if (s.valueDim % 4 !== 0) return `valueDim ${s.valueDim} is not a multiple of 4`;
  return undefined;
}

export function supportsAttention(
  s: Pick<AttentionParams, "heads" | "kvHeads" | "headDim" | "valueDim">,
): boolean {
  return attentionUnsupported(s) === undefined;
}

/**
 * "workgroup": one workgroup per (query, head), positions spread over its
 * invocations (GPUs). "lane": one invocation per (query, head), or per (query,
 * GQA group) once the rows fill the lanes (attention-lane.ts), positions in
 * turn, no barriers (llvmpipe, where it measured ~10x faster at 64-80
 * positions on the 1.1B model's 16 heads).
 */
export type AttentionLayout = "workgroup" | "lane";

/**
 * The lane layout is compiled for one head shape and `gh` query heads per invocation (its code
 * written out); the other for all.
 */
export function attentionDefines(
  layout: AttentionLayout,
  shape: Pick<AttentionParams, "headDim" | "valueDim">,
  rows = false,
  sinks = false,
  gh = 1,
) {
  const common = { ROWS: rows, ...(sinks ? { SINKS: true } : {}) };
  return layout === "lane"
    ? {
      WG: LANE_WG,
      HD4: shape.headDim / 4,
      VD4: shape.valueDim / 4,
      LANE: true,
      ...common,
      ...laneCode(gh, shape, sinks),
    }
    : { WG, MAX_HEAD_DIM, MAX_VALUE_DIM, ...common };
}

/** The pipeline cache's key for these defines: without the lane layout's generated code. */
function attentionKey(defines: ReturnType<typeof attentionDefines>): string {
  return `attention|${definesKey({ ...defines, ...LANE_GENERATED })}`;
}

function attentionPipeline(device: GPUDevice, defines: ReturnType<typeof attentionDefines>) {
  return getPipeline(device, attentionKey(defines), () => kernelSource(FILE, defines));
}

/** Workgroups for n query rows of `heads` heads, `gh` heads an invocation in the lane layout. */
function attentionWorkgroups(layout: AttentionLayout, n: number, heads: number, gh = 1): number {
  return layout === "lane" ? Math.ceil((n * heads) / gh / LANE_WG) : n * heads;
}

/** The layout for an adapter: lanes on software adapters. */
export function defaultAttentionLayout(gpu: { isFallback: boolean }): AttentionLayout {
  return gpu.isFallback ? "lane" : "workgroup";
}

/** Compiles every variant now (setup, tests): WGSL errors surface with line numbers. */
export async function prepareAttention(
  device: GPUDevice,
  shape: Pick<AttentionParams, "headDim" | "valueDim"> = { headDim: 64, valueDim: 64 },
): Promise<void> {
  await kernelPipelineChecked(device, "attention", FILE, attentionDefines("workgroup", shape));
  for (const gh of [1, 2]) {
    const defines = attentionDefines("lane", shape, false, false, gh);
    await getPipelineChecked(device, attentionKey(defines), () => kernelSource(FILE, defines));
  }
  await kernelPipelineChecked(device, "attention", FILE, { WG, KV_WRITE: true });
}

export function bindAttention(
  device: GPUDevice,
  bufs: AttentionBuffers,
  params: AttentionParams,
  layout: AttentionLayout = "workgroup",
): BoundKernel<AttentionParams> {
  const why = attentionUnsupported(params);
  if (why) throw new Error(`attention: ${why}`);
  const sinks = bufs.sinks !== undefined;
  const bind = (gh: number) =>
    bindKernel(device, {
      label: "attention",
      pipeline: attentionPipeline(device, attentionDefines(layout, params, false, sinks, gh)),
      buffers: [bufs.q, bufs.keys, bufs.values, bufs.out, ...(bufs.sinks ? [bufs.sinks] : [])],
      pack: packAttentionParams,
      workgroups: (p) => attentionWorkgroups(layout, p.n, p.heads, gh),
    }, params);
  return layout === "lane" ? bindLaneChoice(bind, params) : bind(1);
}

// ---------------------------------------------------------------------------
// Stacked rows of several sequences (ROWS)
//
// Each row names its cache slot and position in a (slot, position) u32 table.
// A layer's cache holds all slots (slot s owns rows s·ctx ..), made by
// `createKvCache` with ctxSize = slots × ctx; a binding of its first slots
// serves rows of those slots only (slot-kv-cache.ts). `bindKvWriteRows` puts each row's
// new key / value at its slot and position; `bindAttentionRows` runs causal GQA
// attention of each row over its own slot only.

const WRITE_ROWS_DEFINES = { WG, KV_WRITE: true, ROWS: true };

/** Mirrors the KV_WRITE `struct Params` under ROWS. */
export interface KvWriteRowsParams {
  n: number; // rows
  kDim: number;
  vDim: number;
  ctx: number; // cache rows per slot
  ring?: number; // a ring layer's rows per slot (= ctx): position p at row p % ring
}

export interface KvWriteRowsBuffers {
  rows: GPUBuffer; // (n, 2) u32: slot, position
  k: GPUBuffer; // (n, kDim) after RoPE
  v: GPUBuffer; // (n, vDim)
  keys: GPUBuffer | GPUBufferBinding; // this layer's cache, the slots in use
  values: GPUBuffer | GPUBufferBinding;
}

/** Mirrors the attention `struct Params` under ROWS. */
export interface AttentionRowsParams {
  n: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
  ctx: number;
  scale?: number; // default 1 / sqrt(headDim)
  window?: number; // sliding window: the last `window` positions only (default 0: all)
  ring?: number; // a ring layer's rows per slot (= ctx): position p at row p % ring
}

export interface AttentionRowsBuffers {
  rows: GPUBuffer;
  q: GPUBuffer; // (n, heads × headDim) after RoPE
  keys: GPUBuffer | GPUBufferBinding;
  values: GPUBuffer | GPUBufferBinding;
  out: GPUBuffer; // (n, heads × valueDim)
  sinks?: GPUBuffer; // (heads) gpt-oss's sink logits
}

export function packKvWriteRowsParams(p: KvWriteRowsParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.kDim],
    ["u32", p.vDim],
    ["u32", p.ctx],
    ["u32", p.ring ?? 0],
  ]);
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
    ["u32", p.window ?? 0],
    ["u32", p.ring ?? 0],
  ]);
}

export function bindKvWriteRows(
  device: GPUDevice,
  bufs: KvWriteRowsBuffers,
  params: KvWriteRowsParams,
): BoundKernel<KvWriteRowsParams> {
  return bindKernel(device, {
    label: "kv write rows",
    pipeline: kernelPipeline(device, "attention", FILE, WRITE_ROWS_DEFINES),
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
  const sinks = bufs.sinks !== undefined;
  const bind = (gh: number) =>
    bindKernel(device, {
      label: "attention rows",
      pipeline: attentionPipeline(device, attentionDefines(layout, params, true, sinks, gh)),
      buffers: [
        bufs.rows,
        bufs.q,
        bufs.keys,
        bufs.values,
        bufs.out,
        ...(bufs.sinks ? [bufs.sinks] : []),
      ],
      pack: packAttentionRowsParams,
      workgroups: (p) => attentionWorkgroups(layout, p.n, p.heads, gh),
    }, params);
  return layout === "lane" ? bindLaneChoice(bind, params) : bind(1);
}
