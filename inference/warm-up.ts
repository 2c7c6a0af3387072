/**
 * A throwaway run through the paths requests take, so a device engine builds
 * its kernels now rather than during the first request: WebGPU compiles each
 * pipeline on first use, which takes seconds on llvmpipe (the 1.1B Q4_0 model:
 * ~6 s in all). llama.cpp's server warms up the same way. Three prompts: a long
 * one (prefill tiles), a short one (short prompts, batched decode steps) and a
 * single token (decode).
 */
import type { BatchEngine } from "./batch.ts";
import type { Engine } from "./engine.ts";
import type { StageBatch } from "./stage-batch.ts";

const WARM_PROMPTS = [16, 5, 1];

function tokens(n: number, vocabSize: number): number[] {
  return Array.from({ length: n }, (_, i) => (i + 1) % vocabSize);
}

/** Prompt lengths that fit a context of `ctxSize` together. */
function prompts(ctxSize: number): number[] {
  let room = ctxSize;
  return WARM_PROMPTS.filter((n) => (room >= n ? (room -= n, true) : false));
}

/** Runs the warm-up prompts on a throwaway session of `engine`, then frees it. */
export async function warmUpEngine(engine: Engine): Promise<void> {
  const session = engine.createSession();
  try {
    for (const n of prompts(engine.ctxSize)) {
      const ids = tokens(n, engine.config.vocabSize);
      if (session.evaluateGreedy) await session.evaluateGreedy(ids);
      else if (session.evaluateAsync) await session.evaluateAsync(ids);
      else session.evaluate(ids);
    }
  } finally {
    (session as { destroy?: () => void }).destroy?.();
  }
}

/** Runs the warm-up prompts through one slot of `batch`, then gives the slot back. */
export async function warmUpBatch(batch: BatchEngine): Promise<void> {
  const slot = batch.acquire();
  if (slot === undefined) return;
  try {
    for (const n of prompts(batch.ctxSize).filter((n) => n <= batch.maxRows)) {
      await batch.step([{ slot, tokens: tokens(n, batch.vocabSize) }]);
    }
  } finally {
    batch.release(slot);
  }
}

/** Runs the warm-up prompts through one slot of a pipeline stage (its embedding and head too). */
export async function warmUpStage(stage: StageBatch): Promise<void> {
  const slot = stage.acquire();
  if (slot === undefined) return;
  const { dim, layers, vocabSize } = stage.config;
  try {
    for (const n of prompts(stage.ctxSize).filter((n) => n <= stage.maxRows)) {
      const hidden = stage.layerStart === 0
        ? await stage.embed(tokens(n, vocabSize))
        : new Float32Array(n * dim).fill(0.01);
      await stage.forward([{ slot, count: n }], hidden);
      if (stage.layerEnd === layers) await stage.logits(hidden, [n - 1]);
    }
  } finally {
    stage.release(slot);
  }
}
