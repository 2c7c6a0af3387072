/**
 * Embedding lookup on the GPU (embed.wgsl): rows of token_embd, in whatever
 * weight type it is stored, decoded to f32 hidden rows for a list of token
 * ids held in a u32 buffer (so argmax's output can feed the next step without
 * a readback). Mirrors `embedTokens` in inference/reference.ts bit for bit.
 */
import { type GgmlType, ggmlTypeName } from "../../ggml-type.ts";
import { isGpuWeightType } from "../kernel-types.ts";
import { bytesFor } from "../../quant/mod.ts";
import { type GpuMatrix, rowsMatrix, weightDefine } from "../weights.ts";
import {
  bindKernel,
  type BoundKernel,
  kernelPipeline,
  kernelPipelineChecked,
  packFields,
} from "./bound-kernel.ts";

const FILE = "embed.wgsl";
const WG = 256;

/** Per-call params; mirrors `struct Params` in embed.wgsl with the part's rows filled in. */
export interface EmbedParams {
  n: number; // tokens
  idsOffset?: number; // index of token 0 in the ids buffer
  outOffset?: number; // elements
  outStride?: number; // elements between hidden rows (default cols)
}

export interface EmbedBuffers {
  ids: GPUBuffer; // u32 token ids
  out: GPUBuffer; // (n, cols) f32
}

export function packEmbedParams(
  p: EmbedParams,
  m: Pick<GpuMatrix, "cols" | "rowBytes">,
  rowStart: number,
  rowEnd: number,
): ArrayBuffer {
  return packFields([
    ["u32", p.n],
    ["u32", m.cols],
    ["u32", m.rowBytes],
    ["u32", rowStart],
    ["u32", rowEnd],
    ["u32", p.outOffset ?? 0],
    ["u32", p.outStride ?? m.cols],
    ["u32", p.idsOffset ?? 0],
  ]);
}

export function supportsEmbed(type: GgmlType, cols: number): boolean {
  if (!isGpuWeightType(type)) return false;
  try {
    bytesFor(type, cols);
    return cols > 0;
  } catch {
    return false;
  }
}

function defines(type: GgmlType) {
  return { WG, [weightDefine(type)]: true };
}

export async function prepareEmbed(device: GPUDevice, type: GgmlType): Promise<void> {
  await kernelPipelineChecked(device, "embed", FILE, defines(type));
}

/**
 * One dispatch per weight buffer; ids outside the vocabulary match no buffer
 * and leave their output row as it was (host-side ids go through writeTokenIds).
 */
export function bindEmbed(
  device: GPUDevice,
  m: GpuMatrix,
  bufs: EmbedBuffers,
  params: EmbedParams,
): BoundKernel<EmbedParams> {
  if (!supportsEmbed(m.type, m.cols)) {
    throw new Error(`embed: ${ggmlTypeName(m.type)} rows of ${m.cols} values are not supported`);
  }
  const pipeline = kernelPipeline(device, "embed", FILE, defines(m.type));
  const parts = rowsMatrix(m, "embed").parts.filter((p) => p.rows > 0).map((part) =>
    bindKernel(device, {
      label: `embed ${m.name}[${part.firstRow}..]`,
      pipeline,
      buffers: [bufs.ids, part.buffer, bufs.out],
      pack: (p: EmbedParams) => packEmbedParams(p, m, part.firstRow, part.firstRow + part.rows),
      workgroups: (p: EmbedParams) => Math.ceil((p.n * m.cols) / WG),
    }, params)
  );
  return {
    encode: (pass) => parts.forEach((k) => k.encode(pass)),
    update: (p) => parts.forEach((k) => k.update(p)),
    destroy: () => parts.forEach((k) => k.destroy()),
  };
}

/** Checks host token ids against the vocabulary and writes them to `buffer` at `offset` (ids). */
export function writeTokenIds(
  device: GPUDevice,
  buffer: GPUBuffer,
  ids: readonly number[],
  vocabSize: number,
  offset = 0,
): void {
  for (const t of ids) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new Error(`token id ${t} is outside the vocabulary (0..${vocabSize - 1})`);
    }
  }
  device.queue.writeBuffer(buffer, offset * 4, Uint32Array.from(ids));
}
