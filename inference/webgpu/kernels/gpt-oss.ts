/**
 * gpt-oss's ops on a MoE layer's expert outputs (gpt_oss.wgsl): each pair's expert bias
 * (ggml_add_id, reading the expert from the router's ids on the device) and the clamped
 * swiglu_oai activation, as inference/moe.ts does them on the CPU.
 */
import { bindKernel, type BoundKernel, kernelPipeline, packFields } from "./bound-kernel.ts";

const FILE = "gpt_oss.wgsl";
const WG = 256;

export interface GptOssParams {
  n: number; // values to update
}

/** a[p · width + i] += bias[ids[p] · width + i] over the first n values of a. */
export function bindAddId(
  device: GPUDevice,
  bufs: { a: GPUBuffer; bias: GPUBuffer; ids: GPUBuffer },
  width: number,
  params: GptOssParams,
): BoundKernel<GptOssParams> {
  return bindKernel(device, {
    label: "add_id",
    pipeline: kernelPipeline(device, "gpt-oss", FILE, { WG, ADD_ID: true }),
    buffers: [bufs.a, bufs.bias, bufs.ids],
    pack: (p) => packFields([["u32", p.n], ["u32", width]]),
    workgroups: (p) => Math.ceil(p.n / WG),
  }, params);
}

/** a = swiglu_oai(a, b) over the first n values (gate a, up b). */
export function bindSwigluOai(
  device: GPUDevice,
  bufs: { a: GPUBuffer; b: GPUBuffer },
  params: GptOssParams,
): BoundKernel<GptOssParams> {
  return bindKernel(device, {
    label: "swiglu_oai",
    pipeline: kernelPipeline(device, "gpt-oss", FILE, { WG, SWIGLU_OAI: true }),
    buffers: [bufs.a, bufs.b],
    pack: (p) => packFields([["u32", p.n], ["u32", 1]]),
    workgroups: (p) => Math.ceil(p.n / WG),
  }, params);
}
