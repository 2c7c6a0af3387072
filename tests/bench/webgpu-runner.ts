/**
 * Times Grove's WebGPU engine (llvmpipe here): one prefill, then greedy decode
 * with the argmax picked on the device and fed back there as the next token,
 * steps queued ahead of the 4-byte readbacks (evaluateGreedyStream), as
 * `generate --gpu` does. `GROVE_BENCH_GREEDY=loop` times the older path, one
 * host round trip per token (evaluateGreedy), for comparison.
 */
import { createWebGpuEngine } from "../../inference/mod.ts";
import type { Measurement, RunPlan } from "./types.ts";

export async function runGroveWebGpu(path: string, plan: RunPlan): Promise<Measurement> {
  const ctxSize = plan.promptTokens.length + plan.decodeTokens + 1;
  const engine = await createWebGpuEngine({ path, ctxSize });
  try {
    const session = engine.createSession();
    if (!session.evaluateGreedy) throw new Error("the WebGPU session has no evaluateGreedy");
    // Compile the pipelines outside the timed runs, as llama.cpp's Vulkan backend does while it
    // loads: the same prompt and a decode step on a throwaway session (Grove compiles lazily,
    // and a prompt longer than 8 tokens uses other matmul tiles than a short one).
    const warm = engine.createSession();
    await warm.evaluateGreedy!([await warm.evaluateGreedy!(plan.promptTokens)]);
    const loop = Deno.env.get("GROVE_BENCH_GREEDY") === "loop" || !session.evaluateGreedyStream;
    let t1 = 0;
    const t0 = performance.now();
    if (loop) {
      let token = await session.evaluateGreedy(plan.promptTokens);
      t1 = performance.now();
      for (let i = 0; i < plan.decodeTokens; i++) token = await session.evaluateGreedy([token]);
    } else {
      // the first pick ends the prefill; decodeTokens more follow
      for await (
        const _ of session.evaluateGreedyStream!(plan.promptTokens, plan.decodeTokens + 1)
      ) {
        t1 ||= performance.now();
      }
    }
    const t2 = performance.now();
    return {
      engine: `Grove WebGPU (${engine.gpu.adapterName})${loop ? ", a round trip per token" : ""}`,
      promptTokens: plan.promptTokens.length,
      prefillTokensPerSecond: plan.promptTokens.length / ((t1 - t0) / 1000),
      decodeTokens: plan.decodeTokens,
      decodeTokensPerSecond: plan.decodeTokens / ((t2 - t1) / 1000),
      loadMs: engine.info.loadMs,
    };
  } finally {
    engine.close();
  }
}
