/** The WebGPU engine against the CPU engine on the qwen2 / qwen3 test models (see the harness). */
import { REFERENCE_MODELS } from "./support/reference-models.ts";
import { checkAgreement, runsOnWebGpu } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-qwen-" });

const models = REFERENCE_MODELS.filter((m) => runsOnWebGpu(m) && m.name.startsWith("test-qwen"));
for (const model of models) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

Deno.test("webgpu agreement (qwen): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
