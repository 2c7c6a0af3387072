/**
 * The WebGPU engine against the CPU engine on the qwen2moe / qwen3moe test models (F16 and the
 * Q4_K_M mix; see the harness): routing, top-k and the experts' products all on the device.
 */
import { MOE_REFERENCE_MODELS } from "./support/reference-models-moe.ts";
import { checkAgreement } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-moe-" });

for (const model of MOE_REFERENCE_MODELS) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

Deno.test("webgpu agreement (moe): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
