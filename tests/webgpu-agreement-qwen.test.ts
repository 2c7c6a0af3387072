/** The WebGPU engine against the CPU engine on the qwen2 / qwen3 test models (see the harness). */
import { REFERENCE_MODELS } from "./support/reference-models.ts";
import { agreementTests, runsOnWebGpu } from "./webgpu-agreement-harness.ts";

const models = REFERENCE_MODELS.filter((m) => runsOnWebGpu(m) && m.name.startsWith("test-qwen"));
const { cleanUp } = agreementTests(models, "qwen");

cleanUp();
