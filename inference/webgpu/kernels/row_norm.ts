/**
 * RMSNorm over rows on the GPU (row_norm.wgsl): the hidden rows before
 * attention / feed-forward / the head, and qwen3's per-head Q/K norm (rows of
 * headDim, rows = tokens × heads). Mirrors `rmsNorm` in inference/reference.ts.
 */
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";

const FILE = "row_norm.wgsl";
const WG = 64;

/** Mirrors `struct Params` in row_norm.wgsl. */
export interface RowNormParams {
  n: number; // row length = weight length
  rows: number;
  eps: number;
  xOffset?: number; // elements
  outOffset?: number; // elements; ignored in place
}

export interface RowNormBuffers {
  x: GPUBuffer; // (rows, n) f32 from xOffset
  weight: GPUBuffer; // (n) f32
  /** (rows, n) f32 from outOffset; omit to normalize `x` in place. */
  out?: GPUBuffer;
}

export function packRowNormParams(p: RowNormParams): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", p.rows],
    ["u32", p.xOffset ?? 0],
    ["u32", p.outOffset ?? 0],
    ["f32", p.eps],
  ]);
}

/** Any positive row length works; one workgroup per row. */
export function supportsRowNorm(n: number): boolean {
  return Number.isInteger(n) && n > 0;
}

function defines(inPlace: boolean, vec4: boolean) {
  return { WG, INPLACE: inPlace, VEC4: vec4 };
}

/** Compiles both variants now (setup, tests): WGSL errors surface here with line numbers. */
export async function prepareRowNorm(device: GPUDevice, inPlace: boolean): Promise<void> {
  for (const vec4 of [false, true]) {
    await kernelPipelineChecked(device, "row_norm", FILE, defines(inPlace, vec4));
  }
}

/** Whether rows and offsets divide by 4, so the kernel can go by vec4s. */
function quads(p: RowNormParams): boolean {
  return [p.n, p.xOffset ?? 0, p.outOffset ?? 0].every((v) => v % 4 === 0);
}

export function bindRowNorm(
  device: GPUDevice,
  bufs: RowNormBuffers,
  params: RowNormParams,
): BoundKernel<RowNormParams> {
  if (!supportsRowNorm(params.n)) throw new Error(`row_norm: bad row length ${params.n}`);
  const inPlace = bufs.out === undefined;
  const vec4 = quads(params);
  return bindKernel(device, {
    label: inPlace ? "row_norm in place" : "row_norm",
    pipeline: kernelPipeline(device, "row_norm", FILE, defines(inPlace, vec4)),
    buffers: inPlace ? [bufs.weight, bufs.x] : [bufs.weight, bufs.x, bufs.out!],
    pack: (p) => {
      if (vec4 && !quads(p)) {
        throw new Error(
          `row_norm: this kernel was bound for vec4s; n ${p.n}, offsets ${p.xOffset ?? 0}/` +
            `${p.outOffset ?? 0} are not all multiples of 4`,
        );
      }
      return packRowNormParams(p);
    },
    workgroups: (p) => p.rows,
  }, params);
}
