/**
 * Element-wise ops on the GPU (elementwise.wgsl), all in place on `a`:
 * residual add, a bias per row (qwen2's q/k/v biases), SwiGLU
 * (silu(gate) · up) and gemma3's GeGLU (gelu(gate) · up, inference/gelu.ts),
 * scale and logit soft-capping, as in inference/reference.ts.
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

export type ElementwiseOp = "add" | "addBias" | "swiglu" | "geglu" | "scale" | "softcap";

const DEFINE: Record<ElementwiseOp, string> = {
  add: "ADD",
  addBias: "ADD_BIAS",
  swiglu: "SWIGLU",
  geglu: "GEGLU",
  scale: "SCALE",
  softcap: "SOFTCAP",
};

/** Mirrors `struct Params` in elementwise.wgsl. */
export interface ElementwiseParams {
  n: number; // values of `a` to update
  width?: number; // bias length, for addBias (n is rows × width)
  aOffset?: number; // elements
  bOffset?: number; // elements
  scale?: number; // the factor of "scale", the cap of "softcap"
}

export interface ElementwiseBuffers {
  a: GPUBuffer; // updated in place: residual / rows / gate
  b?: GPUBuffer; // added / bias / up; none for "scale" and "softcap"
}

export function packElementwiseParams(p: ElementwiseParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.width ?? 1],
    ["u32", p.aOffset ?? 0],
    ["u32", p.bOffset ?? 0],
    ["f32", p.scale ?? 1],
  ]);
}

function defines(op: ElementwiseOp, vec4: boolean) {
  return { WG, [DEFINE[op]]: true, VEC4: vec4 };
}

export async function prepareElementwise(device: GPUDevice, op: ElementwiseOp): Promise<void> {
  for (const vec4 of [false, true]) {
    await kernelPipelineChecked(device, `elementwise`, FILE, defines(op, vec4));
  }
}

/** Whether every count and offset divides by 4, so the kernel can go by vec4s. */
function quads(p: ElementwiseParams): boolean {
  return [p.n, p.width ?? 4, p.aOffset ?? 0, p.bOffset ?? 0].every((v) => v % 4 === 0);
}

/** The params in vec4 units (the VEC4 variant). */
function inQuads(p: ElementwiseParams): ElementwiseParams {
  if (!quads(p)) {
    throw new Error(
      `elementwise: this kernel was bound for vec4s; n ${p.n}, width ${p.width}, ` +
        `offsets ${p.aOffset ?? 0}/${p.bOffset ?? 0} are not all multiples of 4`,
    );
  }
  const q = (v: number | undefined) => v === undefined ? undefined : v / 4;
  return {
    n: p.n / 4,
    width: q(p.width),
    aOffset: q(p.aOffset),
    bOffset: q(p.bOffset),
    scale: p.scale,
  };
}

export function bindElementwise(
  device: GPUDevice,
  op: ElementwiseOp,
  bufs: ElementwiseBuffers,
  params: ElementwiseParams,
): BoundKernel<ElementwiseParams> {
  if (!(op in DEFINE)) throw new Error(`elementwise: unknown op "${op}"`);
  const aOnly = op === "scale" || op === "softcap";
  if (!aOnly && !bufs.b) throw new Error(`elementwise ${op}: needs buffer b`);
  if (op === "addBias" && !(params.width && params.n % params.width === 0)) {
    throw new Error(`elementwise addBias: ${params.n} values are not rows of ${params.width}`);
  }
  const vec4 = quads(params);
  const unit = (p: ElementwiseParams) => vec4 ? inQuads(p) : p;
  return bindKernel(device, {
    label: `elementwise ${op}`,
    pipeline: kernelPipeline(device, "elementwise", FILE, defines(op, vec4)),
    // "scale" and "softcap" read no b: the automatic layout drops its binding.
    buffers: aOnly ? [bufs.a] : [bufs.a, bufs.b!],
    pack: (p) => packElementwiseParams(unit(p)),
    workgroups: (p) => Math.ceil(unit(p).n / WG),
  }, params);
}
