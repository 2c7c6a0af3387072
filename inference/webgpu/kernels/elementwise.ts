/**
 * Element-wise ops on the GPU (elementwise.wgsl), all in place on `a`:
 * residual add, a bias per row (qwen2's q/k/v biases) and SwiGLU
 * (silu(gate) · up), as in inference/reference.ts `forwardLayers`.
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";

const FILE = "elementwise.wgsl";
const WG = 256;

export type ElementwiseOp = "add" | "addBias" | "swiglu";

const DEFINE: Record<ElementwiseOp, string> = {
  add: "ADD",
  addBias: "ADD_BIAS",
  swiglu: "SWIGLU",
};

/** Mirrors `struct Params` in elementwise.wgsl. */
export interface ElementwiseParams {
  n: number; // values of `a` to update
  width?: number; // bias length, for addBias (n is rows × width)
  aOffset?: number; // elements
  bOffset?: number; // elements
}

export interface ElementwiseBuffers {
  a: GPUBuffer; // updated in place: residual / rows / gate
  b: GPUBuffer; // added / bias / up
}

export function packElementwiseParams(p: ElementwiseParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.width ?? 1],
    ["u32", p.aOffset ?? 0],
    ["u32", p.bOffset ?? 0],
  ]);
}

function defines(op: ElementwiseOp) {
  return { WG, [DEFINE[op]]: true };
}

export async function prepareElementwise(device: GPUDevice, op: ElementwiseOp): Promise<void> {
  await kernelPipelineChecked(device, `elementwise`, FILE, defines(op));
}

export function bindElementwise(
  device: GPUDevice,
  op: ElementwiseOp,
  bufs: ElementwiseBuffers,
  params: ElementwiseParams,
): BoundKernel<ElementwiseParams> {
  if (!(op in DEFINE)) throw new Error(`elementwise: unknown op "${op}"`);
  if (op === "addBias" && !(params.width && params.n % params.width === 0)) {
    throw new Error(`elementwise addBias: ${params.n} values are not rows of ${params.width}`);
  }
  return bindKernel(device, {
    label: `elementwise ${op}`,
    pipeline: kernelPipeline(device, "elementwise", FILE, defines(op)),
    buffers: [bufs.a, bufs.b],
    pack: packElementwiseParams,
    workgroups: (p) => Math.ceil(p.n / WG),
  }, params);
}
