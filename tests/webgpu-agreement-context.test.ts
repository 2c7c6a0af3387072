/**
 * The WebGPU engine against the CPU engine on the RoPE-scaling test models (linear; YaRN with its
 * ramp inside the pairs, with and without an attn_factor): the GPU's rope table carries YaRN's
 * per-pair angles and mscale (webgpu/kernels/rope.ts). The f16-cache references are CPU-only:
 * the GPU's cache is f32.
 */
import { CONTEXT_REFERENCE_MODELS } from "./support/reference-models-context.ts";
import { agreementTests } from "./webgpu-agreement-harness.ts";

const { cleanUp } = agreementTests(
  CONTEXT_REFERENCE_MODELS.filter((m) => m.kvCache !== "F16"),
  "context",
);

cleanUp();
