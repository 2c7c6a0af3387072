/**
 * The WebGPU engine against the CPU engine on the qwen2moe / qwen3moe test models (F16 and the
 * Q4_K_M mix; see the harness): routing, top-k and the experts' products all on the device.
 */
import { MOE_REFERENCE_MODELS } from "./support/reference-models-moe.ts";
import { agreementTests } from "./webgpu-agreement-harness.ts";

const { cleanUp } = agreementTests(MOE_REFERENCE_MODELS, "moe");

cleanUp();
