/**
 * The WebGPU engine against the CPU engine on the gpt-oss test models (F16 and the MXFP4_MOE
 * mix; see the harness): attention sinks, the sliding window, YaRN, the output bias, the
 * router's and experts' biases and swiglu_oai, all on the device; then the batched engine's
 * stacked rows and a WebGPU stage before a CPU stage.
 */
import { GgmlType } from "../inference/mod.ts";
import { GPTOSS_REFERENCE_MODELS } from "./support/reference-models-gptoss.ts";
import { quantizeGguf } from "./support/quantize-gguf.ts";
import { checkBatchAgainstLone, checkSplitAgainstWhole } from "./support/webgpu-lockstep.ts";
import { agreementTests, CTX } from "./webgpu-agreement-harness.ts";

// The GPU engine's cache is f32: the f16-cache reference is the CPU engine's alone.
const { dir, cleanUp } = agreementTests(
  GPTOSS_REFERENCE_MODELS.filter((m) => !m.kvCache),
  "gpt-oss",
);

Deno.test("webgpu batch on gpt-oss: stacked rows (sinks and the window in the ROWS attention, each row's experts and biases) equal lone sessions", async () => {
  // 16 steps: both sequences run well past the window of 8.
  await checkBatchAgainstLone(await GPTOSS_REFERENCE_MODELS[1].build(dir), CTX, 16);
});

Deno.test("gpt-oss split: a WebGPU stage (layers 0-1) then a CPU stage (2-3) give the CPU engine's logits", async () => {
  // On F32 weights, so the CPU's activations are f32 like the GPU's.
  const path = `${dir}/gpt-oss-split-f32.gguf`;
  await quantizeGguf(await GPTOSS_REFERENCE_MODELS[0].build(dir), path, GgmlType.F32);
  await checkSplitAgainstWhole({ path, ctxSize: CTX, split: 2, layers: 4 });
});

cleanUp();
