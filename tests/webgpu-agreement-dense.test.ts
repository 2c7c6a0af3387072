/** The WebGPU engine against the CPU engine on the gemma3 and phi3 test models (see the harness). */
import { DENSE_REFERENCE_MODELS } from "./support/reference-models-dense.ts";
import { checkAgreement } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-dense-" });

for (const model of DENSE_REFERENCE_MODELS) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

Deno.test("webgpu agreement (dense): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
