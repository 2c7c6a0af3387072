/**
 * llama.cpp's continuous batching, the yardstick for batching.ts: one context of `width`
 * sequences (node-llama-cpp), each sequence prefilled with the same short prompt Grove's get, then
 * every step one greedy token per sequence. node-llama-cpp gathers the evaluations queued in one
 * event-loop turn into one llama_decode batch, so `width` concurrent steps are one batched step,
 * as in Grove's scheduler.
 */
import type { LlamaContext } from "node-llama-cpp";
import { nextToken, openLlama } from "./llama-runner.ts";

export interface LlamaBatchingResult {
  single: number; // decode tok/s, one sequence
  concurrent: number; // aggregate decode tok/s, `width` sequences
}

/** Aggregate tok/s of the context's first `width` sequences stepping together for `steps` steps. */
async function decodeRate(
  context: LlamaContext,
  width: number,
  steps: number,
  prompt: (i: number) => number[],
): Promise<number> {
  const sequences = Array.from({ length: width }, () => context.getSequence());
  try {
    let next: number[] = [];
    for (const [i, s] of sequences.entries()) next.push(await nextToken(s, prompt(i)));
    const all = () => Promise.all(sequences.map((s, i) => nextToken(s, [next[i]])));
    next = await all(); // warm-up step, as Grove's
    const t0 = performance.now();
    for (let k = 0; k < steps; k++) next = await all();
    return (width * steps) / ((performance.now() - t0) / 1000);
  } finally {
    for (const s of sequences) s.dispose();
  }
}

export async function measureLlamaBatching(
  path: string,
  o: { steps: number; width: number; threads: number; prompt: (i: number) => number[] },
): Promise<LlamaBatchingResult> {
  const llama = await openLlama(o.threads);
  try {
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    const context = await model.createContext({
      contextSize: o.prompt(0).length + o.steps + 8, // per sequence
      sequences: o.width,
      threads: o.threads,
    });
    const single = await decodeRate(context, 1, o.steps, o.prompt);
    const concurrent = await decodeRate(context, o.width, o.steps, o.prompt);
    await context.dispose();
    await model.dispose();
    return { single, concurrent };
  } finally {
    await llama.dispose();
  }
}
