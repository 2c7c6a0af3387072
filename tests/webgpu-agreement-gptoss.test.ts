/**
 * The WebGPU engine against the CPU engine on the gpt-oss test models (F16 and the MXFP4_MOE
 * mix; see the harness): attention sinks, the sliding window, YaRN, the output bias, the
 * router's and experts' biases and swiglu_oai, all on the device.
 */
import { GPTOSS_REFERENCE_MODELS } from "./support/reference-models-gptoss.ts";
import { checkAgreement } from "./webgpu-agreement-harness.ts";

const dir = Deno.makeTempDirSync({ prefix: "grove-webgpu-agreement-gptoss-" });

for (const model of GPTOSS_REFERENCE_MODELS) {
  Deno.test(`webgpu agrees with the CPU engine: ${model.name}`, () => checkAgreement(model, dir));
}

Deno.test("webgpu agreement (gpt-oss): clean up generated models", () => {
  Deno.removeSync(dir, { recursive: true });
});
