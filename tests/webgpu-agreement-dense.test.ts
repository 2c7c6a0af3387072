/** The WebGPU engine against the CPU engine on the gemma3 and phi3 test models (see the harness). */
import { DENSE_REFERENCE_MODELS } from "./support/reference-models-dense.ts";
import { checkBatchAgainstLone, checkSplitAgainstWhole } from "./support/webgpu-lockstep.ts";
import { agreementTests, CTX } from "./webgpu-agreement-harness.ts";

// The GPU engine's cache is f32: the f16-cache reference is the CPU engine's alone.
const { dir, cleanUp } = agreementTests(DENSE_REFERENCE_MODELS.filter((m) => !m.kvCache), "dense");

Deno.test("webgpu batch on gemma3: stacked rows (the window in the ROWS kernels, the batch head's soft-capping) equal lone sessions", async () => {
  const model = DENSE_REFERENCE_MODELS.find((m) => m.name === "test-gemma3-softcap-f32")!;
  // 20 steps: both sequences run well past the window of 8.
  await checkBatchAgainstLone(await model.build(dir), CTX, 20);
});

/**
 * A WebGPU stage of layer 0 then a CPU stage of layer 1 against the whole CPU engine: each stage
 * holds its part of the architecture (gemma3's embedding scale, window and post-norms; phi3's
 * fused matrices and LongRoPE factors, each stage picking them by its own context).
 */
async function checkSplit(name: string) {
  const model = DENSE_REFERENCE_MODELS.find((m) => m.name === name)!;
  const path = await model.build(dir);
  await checkSplitAgainstWhole({ path, ctxSize: CTX, split: 1, layers: 2, embedsAlike: true });
}

for (const name of ["test-gemma3-f32", "test-phi3-longrope-f32"]) {
  Deno.test(`${name} split: a WebGPU stage then a CPU stage give the CPU engine's logits`, () =>
    checkSplit(name));
}

cleanUp();
