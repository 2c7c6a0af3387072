/**
 * Times Grove's own CPU engine: one prefill, then greedy decode one token at a time, after the
 * same prompt and a decode step on a throwaway session. That warm-up is V8's: the engine's
 * TypeScript paths run interpreted until they are compiled, which on a small model such as
 * stories260K costs the first prefill a third of its speed; llama.cpp's runner warms up too, as
 * llama-bench does by default.
 */
import { createCpuEngine } from "../../inference/mod.ts";
import type { Measurement, RunPlan } from "./types.ts";

function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export async function runGrove(path: string, plan: RunPlan): Promise<Measurement> {
  const ctxSize = plan.promptTokens.length + plan.decodeTokens + 1;
  const engine = await createCpuEngine({ path, ctxSize });
  const warm = engine.createSession();
  warm.evaluate([argmax(warm.evaluate(plan.promptTokens))]);
  const session = engine.createSession();
  const t0 = performance.now();
  let logits = session.evaluate(plan.promptTokens);
  const t1 = performance.now();
  for (let i = 0; i < plan.decodeTokens; i++) logits = session.evaluate([argmax(logits)]);
  const t2 = performance.now();
  return {
    engine: `Grove CPU (${engine.info.adapter})`,
    promptTokens: plan.promptTokens.length,
    prefillTokensPerSecond: plan.promptTokens.length / ((t1 - t0) / 1000),
    decodeTokens: plan.decodeTokens,
    decodeTokensPerSecond: plan.decodeTokens / ((t2 - t1) / 1000),
    loadMs: engine.info.loadMs,
  };
}
