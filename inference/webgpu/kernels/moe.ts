/**
 * The routing and the combination of a MoE layer on the GPU (moe.wgsl): ROUTE turns the
 * router's logits into each row's chosen experts (u32) and their weights, COMBINE adds the
 * weighted expert outputs (and the shared expert's) to the residual stream.
 */
import type { MoeConfig } from "../../model-config.ts";
import { bindKernel, type BoundKernel, grid, kernelPipeline, packFields } from "./bound-kernel.ts";

const FILE = "moe.wgsl";
const WG = 64;
const GATING = { "softmax": 0, "sigmoid": 1, "softmax-after-topk": 2 } as const;

export interface MoeKernelParams {
  n: number; // rows of the step
}

function pack(
  moe: MoeConfig,
  dim: number,
  n: number,
  workgroups: number,
  listStride = 0,
): ArrayBuffer {
  return packFields([
    ["u32", n],
    ["u32", moe.experts],
    ["u32", moe.used],
    ["u32", dim],
    ["u32", moe.normalizeTopK ? 1 : 0],
    ["u32", GATING[moe.gating]],
    ["f32", moe.weightsScale ?? 1],
    ["u32", grid(workgroups)[0]],
    ["u32", listStride],
  ]);
}

export interface MoeRouteBuffers {
  logits: GPUBuffer; // (n, experts) the router's output
  ids: GPUBuffer; // (n, used) u32, written
  weights: GPUBuffer; // (n, used), written
  /** The shared expert's gate: the normed rows, gate_inp (dim), and the per-row scale out. */
  shared?: { xb: GPUBuffer; gateInp: GPUBuffer; scale: GPUBuffer };
}

export function bindMoeRoute(
  device: GPUDevice,
  moe: MoeConfig,
  dim: number,
  b: MoeRouteBuffers,
  params: MoeKernelParams,
): BoundKernel<MoeKernelParams> {
  const workgroups = (p: MoeKernelParams) => Math.ceil(p.n / WG);
  const s = b.shared;
  return bindKernel(device, {
    label: "moe route",
    pipeline: kernelPipeline(device, "moe", FILE, { WG, ROUTE: true, SHARED: s !== undefined }),
    buffers: [b.logits, b.ids, b.weights, ...(s ? [s.xb, s.gateInp, s.scale] : [])],
    pack: (p) => pack(moe, dim, p.n, workgroups(p)),
    workgroups,
  }, params);
}

export interface MoeCombineBuffers {
  hidden: GPUBuffer; // (n, dim) += the layer's output
  weights: GPUBuffer; // (n, used)
  down: GPUBuffer; // (n, used, dim) each pair's expert output
  shared?: { scale: GPUBuffer; out: GPUBuffer }; // (n), (n, dim)
}

export function bindMoeCombine(
  device: GPUDevice,
  moe: MoeConfig,
  dim: number,
  b: MoeCombineBuffers,
  params: MoeKernelParams,
): BoundKernel<MoeKernelParams> {
  const workgroups = (p: MoeKernelParams) => Math.ceil(p.n * dim / WG);
  const s = b.shared;
  return bindKernel(device, {
    label: "moe combine",
    pipeline: kernelPipeline(device, "moe", FILE, { WG, COMBINE: true, SHARED: s !== undefined }),
    buffers: [b.hidden, b.weights, b.down, ...(s ? [s.scale, s.out] : [])],
    pack: (p) => pack(moe, dim, p.n, workgroups(p)),
    workgroups,
  }, params);
}

export interface MoeGroupBuffers {
  ids: GPUBuffer; // (n, used) u32, from ROUTE
  counts: GPUBuffer; // (experts) u32, written
  lists: GPUBuffer; // (experts, maxRows) u32, written
}

/** Each expert's routed pairs (for the grouped prefill products); `maxRows` sizes the lists. */
export function bindMoeGroup(
  device: GPUDevice,
  moe: MoeConfig,
  maxRows: number,
  b: MoeGroupBuffers,
  params: MoeKernelParams,
): BoundKernel<MoeKernelParams> {
  const workgroups = () => Math.ceil(moe.experts / WG);
  return bindKernel(device, {
    label: "moe group",
    pipeline: kernelPipeline(device, "moe", FILE, { WG, GROUP: true }),
    buffers: [b.ids, b.counts, b.lists],
    pack: (p) => {
      if (p.n > maxRows) throw new Error(`moe group: ${p.n} rows, the lists hold ${maxRows}`);
      return pack(moe, 0, p.n, workgroups(), maxRows);
    },
    workgroups,
  }, params);
}
