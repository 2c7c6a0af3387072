/**
 * llama.cpp's continuous batching, the yardstick for batching.ts: one context of `width`
 * sequences (node-llama-cpp), each sequence prefilled with the same short prompt Grove's get, then
 * every step one greedy token per sequence. node-llama-cpp gathers the evaluations queued in one
 * event-loop turn into one llama_decode batch, so `width` concurrent steps are one batched step,
 * as in Grove's scheduler.
 */
import type { LlamaContext } from "node-llama-cpp";
import { nextToken, openLlama } from "./llama-runner.ts";
import { alternatingRates, ROUNDS } from "./stats.ts";

export interface LlamaBatchingResult {
  single: number; // decode tok/s, one sequence
  concurrent: number; // aggregate decode tok/s, `width` sequences
}

/**
 * Decode tok/s of one sequence and of `width` sequences stepping together, `steps` steps each
 * after a warm-up step, in alternating rounds as batching.ts times Grove.
 */
async function decodeRates(
  context: LlamaContext,
  width: number,
  steps: number,
  prompt: (i: number) => number[],
): Promise<LlamaBatchingResult> {
  const sequences = Array.from({ length: width + 1 }, () => context.getSequence());
  try {
    const next: number[] = [];
    for (const [i, s] of sequences.entries()) next.push(await nextToken(s, prompt(i % width)));
    // Sequence 0 alone; 1 .. width together.
    const stepAll = async (from: number, to: number) => {
      const picks = await Promise.all(
        sequences.slice(from, to).map((s, i) => nextToken(s, [next[from + i]])),
      );
      picks.forEach((p, i) => next[from + i] = p);
    };
    return await alternatingRates(steps, width, () => stepAll(0, 1), () => stepAll(1, width + 1));
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
      contextSize: o.prompt(0).length + o.steps + ROUNDS + 8, // per sequence
      sequences: o.width + 1, // the lone one and the group
      threads: o.threads,
    });
    const rates = await decodeRates(context, o.width, o.steps, o.prompt);
    await context.dispose();
    await model.dispose();
    return rates;
  } finally {
    await llama.dispose();
  }
}
