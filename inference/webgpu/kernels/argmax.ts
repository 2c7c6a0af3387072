/**
 * Token selection on the GPU (argmax.wgsl): greedy argmax to one u32, the
 * top k (≤ 64) ids and logits for sampling on the host, so decode reads back
 * 4 bytes or 8k bytes instead of the vocabulary, or a pick drawn on the device
 * as inference/sampler.ts draws one (top-k ≤ 64, top-p, min-p, temperature), so
 * decode steps can follow each other without the host. Ties go to the lowest
 * index, like `argmax` / `topK` in inference/sampler.ts.
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  kernelSource,
  packFields,
} from "./bound-kernel.ts";
import type { Defines } from "../wgsl.ts";

const FILE = "argmax.wgsl";
const ARGMAX_WG = 256;
// Each top-k invocation keeps MAX_K candidates in private memory; fewer lanes keep that small.
const TOP_K_WG = 64;
export const MAX_TOP_K = 64;

/** Returned in the id slots past the row's length when k > n. */
export const NO_TOKEN = 0xffffffff;

/** Mirrors `struct Params` in argmax.wgsl. */
export interface SelectParams {
  n: number; // logits
  k?: number; // top-k only: 1 .. MAX_TOP_K
  offset?: number; // element offset of logit 0
  outOffset?: number; // first result slot in ids / values
}

export interface ArgmaxBuffers {
  logits: GPUBuffer; // f32
  ids: GPUBuffer; // u32 results
}

export interface TopKBuffers extends ArgmaxBuffers {
  values: GPUBuffer; // f32 logits of the chosen ids
}

export function packSelectParams(p: SelectParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.k ?? 1],
    ["u32", p.offset ?? 0],
    ["u32", p.outOffset ?? 0],
  ]);
}

/** Mirrors `struct Params` in argmax.wgsl under SAMPLE. */
export interface SampleParams extends SelectParams {
  k: number;
  temperature: number; // > 0
  topP: number; // 1: off
  minP: number; // 0: off
  /** Index in `draws` of this row's first draw; `drawn[outOffset]` counts those used. */
  firstDraw: number;
}

export interface SampleBuffers extends ArgmaxBuffers {
  /** Uniform draws in [0, 1), as the sampler's generator would give them (rng.nextFloat). */
  draws: GPUBuffer;
  /** u32 per row: draws used so far (zero it before the first pick of a run). */
  drawn: GPUBuffer;
}

export function packSampleParams(p: SampleParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.k],
    ["u32", p.offset ?? 0],
    ["u32", p.outOffset ?? 0],
    ["f32", p.temperature],
    ["f32", p.topP],
    ["f32", p.minP],
    ["u32", p.firstDraw],
  ]);
}

export function supportsTopK(k: number): boolean {
  return Number.isInteger(k) && k >= 1 && k <= MAX_TOP_K;
}

const ARGMAX_DEFINES = { WG: ARGMAX_WG };
const ARGMAX_SUBGROUP_DEFINES = { WG: ARGMAX_WG, SUBGROUP: true };

/** The argmax kernel's defines: its subgroup reduction where the device has subgroups. */
export function argmaxDefines(device: GPUDevice): Defines {
  return device.features.has("subgroups") ? ARGMAX_SUBGROUP_DEFINES : ARGMAX_DEFINES;
}

/** The argmax WGSL for these defines (the browser test ships it to a page). */
export function argmaxSource(defines: Defines): string {
  return kernelSource(FILE, defines);
}
const TOP_K_DEFINES = { WG: TOP_K_WG, MAX_K: MAX_TOP_K, TOP_K: true };
const SAMPLE_DEFINES = { ...TOP_K_DEFINES, SAMPLE: true };

export async function prepareSelect(device: GPUDevice): Promise<void> {
  await kernelPipelineChecked(device, "argmax", FILE, argmaxDefines(device));
  await kernelPipelineChecked(device, "argmax", FILE, TOP_K_DEFINES);
  await kernelPipelineChecked(device, "argmax", FILE, SAMPLE_DEFINES);
  await kernelPipelineChecked(device, "argmax", FILE, { PENALIZE: true });
  await kernelPipelineChecked(device, "argmax", FILE, { APPEND: true });
}

function checkRow(p: SelectParams) {
  if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`argmax: bad logit count ${p.n}`);
}

/** ids[outOffset] = the index of the largest logit (one workgroup). */
export function bindArgmax(
  device: GPUDevice,
  bufs: ArgmaxBuffers,
  params: SelectParams,
): BoundKernel<SelectParams> {
  checkRow(params);
  return bindKernel(device, {
    label: "argmax",
    pipeline: kernelPipeline(device, "argmax", FILE, argmaxDefines(device)),
    buffers: [bufs.logits, bufs.ids],
    pack: (p) => (checkRow(p), packSelectParams(p)),
    workgroups: () => 1,
  }, params);
}

/** ids / values [outOffset .. outOffset + k): the k largest logits, best first. */
export function bindTopK(
  device: GPUDevice,
  bufs: TopKBuffers,
  params: SelectParams,
): BoundKernel<SelectParams> {
  const check = (p: SelectParams) => {
    checkRow(p);
    if (!supportsTopK(p.k ?? 0)) throw new Error(`top-k: k = ${p.k} is outside 1..${MAX_TOP_K}`);
  };
  check(params);
  return bindKernel(device, {
    label: "top-k",
    pipeline: kernelPipeline(device, "argmax", FILE, TOP_K_DEFINES),
    buffers: [bufs.logits, bufs.ids, bufs.values],
    pack: (p) => (check(p), packSelectParams(p)),
    workgroups: () => 1,
  }, params);
}

/**
 * ids[outOffset] = a token drawn from the row as inference/sampler.ts's chain draws it at these
 * settings (no penalties or bias): the top k, then top-p, min-p and the temperature, and a
 * uniform draw taken only where more than one candidate is left.
 */
export function bindSample(
  device: GPUDevice,
  bufs: SampleBuffers,
  params: SampleParams,
): BoundKernel<SampleParams> {
  const check = (p: SampleParams) => {
    checkRow(p);
    if (!supportsTopK(p.k)) throw new Error(`sample: top-k ${p.k} is outside 1..${MAX_TOP_K}`);
    if (!(p.temperature > 0)) throw new Error(`sample: temperature ${p.temperature} is not > 0`);
  };
  check(params);
  return bindKernel(device, {
    label: "sample",
    pipeline: kernelPipeline(device, "argmax", FILE, SAMPLE_DEFINES),
    buffers: [bufs.logits, bufs.ids, bufs.draws, bufs.drawn],
    pack: (p) => (check(p), packSampleParams(p)),
    workgroups: () => 1,
  }, params);
}

/** The most recent tokens the device's penalties look at (repeat_last_n). */
export const MAX_PENALTY_WINDOW = 64;

/** Mirrors `struct Params` under PENALIZE (and, its first three fields, under APPEND). */
export interface PenaltyParams {
  offset: number; // the row's first logit
  row: number; // its ring of recent tokens
  window: number; // 1 .. MAX_PENALTY_WINDOW
  repeat: number;
  frequency: number;
  presence: number;
}

export interface PenaltyBuffers {
  logits: GPUBuffer;
  /** The logits copied, the row's recent tokens penalized in place: what the pick reads. */
  work: GPUBuffer;
  /** u32 × MAX_PENALTY_WINDOW per row: its ring of recent tokens. */
  recent: GPUBuffer;
  /** u32 × 2 per row: the ring's start and length. */
  ring: GPUBuffer;
}

function checkWindow(p: { window: number }) {
  if (!Number.isInteger(p.window) || p.window < 1 || p.window > MAX_PENALTY_WINDOW) {
    throw new Error(`penalties: a window of ${p.window} is outside 1..${MAX_PENALTY_WINDOW}`);
  }
}

/**
 * work[offset + t] = logits[offset + t] penalized as inference/sampler.ts does, for the tokens t
 * in the row's ring of recent tokens (copy the row's logits to work first).
 */
export function bindPenalize(
  device: GPUDevice,
  bufs: PenaltyBuffers,
  params: PenaltyParams,
): BoundKernel<PenaltyParams> {
  checkWindow(params);
  return bindKernel(device, {
    label: "penalize",
    pipeline: kernelPipeline(device, "argmax", FILE, { PENALIZE: true }),
    buffers: [bufs.logits, bufs.work, bufs.recent, bufs.ring],
    pack: (p) => (checkWindow(p),
      packFields([
        ["u32", p.offset],
        ["u32", p.row],
        ["u32", MAX_PENALTY_WINDOW],
        ["u32", p.window],
        ["f32", p.repeat],
        ["f32", p.frequency],
        ["f32", p.presence],
        ["u32", 0],
      ])),
    workgroups: () => 1,
  }, params);
}

/** ids[row] joins the row's ring of recent tokens, the oldest leaving once `window` are held. */
export function bindAppend(
  device: GPUDevice,
  bufs: Pick<PenaltyBuffers, "recent" | "ring"> & { ids: GPUBuffer },
  params: Pick<PenaltyParams, "row" | "window">,
): BoundKernel<Pick<PenaltyParams, "row" | "window">> {
  checkWindow(params);
  return bindKernel(device, {
    label: "append recent",
    pipeline: kernelPipeline(device, "argmax", FILE, { APPEND: true }),
    buffers: [bufs.ids, bufs.recent, bufs.ring],
    pack: (p) => (checkWindow(p),
      packFields([
        ["u32", p.row],
        ["u32", MAX_PENALTY_WINDOW],
        ["u32", p.window],
        ["u32", 0],
      ])),
    workgroups: () => 1,
  }, params);
}
