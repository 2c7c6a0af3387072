/**
 * The WebGPU engine against the CPU engine on the RoPE-scaling test models (linear; YaRN with its
 * ramp inside the pairs, with and without an attn_factor): the GPU's rope table carries YaRN's
 * per-pair angles and mscale (webgpu/kernels/rope.ts). The f16-cache references are CPU-only:
 * the GPU's cache is f32.
 */
import { CONTEXT_REFERENCE_MODELS } from "./support/reference-models-context.ts";
import { checkAgreement } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-context-" });

for (const model of CONTEXT_REFERENCE_MODELS.filter((m) => m.kvCache !== "F16")) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

Deno.test("webgpu agreement (context): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
