/**
 * One measurement in its own process, so each engine starts from a clean heap and a crash or
 * hang cannot take the whole bench down. Prints the Measurement as JSON on its last line.
 *
 *   deno run -A tests/bench/measure.ts ENGINE MODEL_PATH PLAN_JSON
 *   ENGINE: grove | grove-webgpu | llama-1 | llama-2 | llama-vulkan | wllama
 */
import { runGrove } from "./grove-runner.ts";
import { runLlamaCpp } from "./llama-runner.ts";
import { runGroveWebGpu } from "./webgpu-runner.ts";
import { runWllama } from "./wllama-runner.ts";
import type { Measurement, RunPlan } from "./types.ts";

export const ENGINES = [
  "grove",
  "grove-webgpu",
  "llama-1",
  "llama-2",
  "llama-vulkan",
  "wllama",
] as const;
export type EngineId = typeof ENGINES[number];

export async function measure(engine: EngineId, path: string, plan: RunPlan): Promise<Measurement> {
  switch (engine) {
    case "grove":
      return await runGrove(path, plan);
    case "grove-webgpu":
      return await runGroveWebGpu(path, plan);
    case "llama-vulkan":
      return await runLlamaCpp(path, plan, 2, "vulkan");
    case "llama-1":
      return await runLlamaCpp(path, plan, 1);
    case "llama-2":
      return await runLlamaCpp(path, plan, 2);
    case "wllama": {
      const r = await runWllama(path, {
        prompt: plan.promptText,
        decodeTokens: plan.decodeTokens,
        ctxSize: plan.promptTokens.length + plan.decodeTokens + 64,
      });
      return {
        engine: `${r.version}, 1 thread`,
        promptTokens: r.promptTokens,
        prefillTokensPerSecond: r.prefillTokensPerSecond,
        decodeTokens: r.decodeTokens,
        decodeTokensPerSecond: r.decodeTokensPerSecond,
        loadMs: r.loadMs,
      };
    }
  }
}

if (import.meta.main) {
  const [engine, path, planJson] = Deno.args;
  if (!ENGINES.includes(engine as EngineId)) {
    console.error(`measure: unknown engine "${engine}" (one of ${ENGINES.join(", ")})`);
    Deno.exit(2);
  }
  const result = await measure(engine as EngineId, path, JSON.parse(planJson) as RunPlan);
  console.log(JSON.stringify(result));
  // wllama's worker and llama.cpp's addon can keep the event loop alive after their dispose.
  Deno.exit(0);
}
