/**
 * A split model chained by hand, as the split's stages are (inference/stage-batch.ts): stage 0
 * embeds, each stage runs its layers on the stacked rows of two interleaved sequences, the last
 * gives logits; beside it, lone sessions of a whole engine get the same tokens.
 */
import assert from "node:assert/strict";
import {
  createCpuEngine,
  type Engine,
  GgmlType,
  loadStageBatch,
  type Session,
  type StageBatch,
  type StageRows,
} from "../../inference/mod.ts";
import { createTestGpu } from "./gpu.ts";
import { writeTestModel } from "./test-models.ts";
import { STORIES } from "./fixtures.ts";
import { roundingTolerance, tracker } from "../webgpu-agreement-harness.ts";
import { argmax } from "./logits.ts";

/** The context the chained stages and engines are loaded with. */
export const CHAIN_CTX = 96;

/** The generated model for a three-way split: llama, Q4_K, 6 layers. */
export function writeSplitTestModel(path: string): Promise<void> {
  return writeTestModel(path, {
    arch: "llama",
    type: GgmlType.Q4_K,
    dim: 256,
    layers: 6,
    heads: 4,
    kvHeads: 2,
    ffn: 512,
    seed: 5,
    vocabFrom: STORIES,
  });
}

/** The ranges as stages of two slots; the one at index `gpuAt` on the test's WebGPU device. */
export function loadStages(
  path: string,
  ranges: readonly [number, number][],
  gpuAt = -1,
): Promise<StageBatch[]> {
  return Promise.all(ranges.map(async ([layerStart, layerEnd], i) =>
    loadStageBatch({
      path,
      layerStart,
      layerEnd,
      ctxSize: CHAIN_CTX,
      maxSlots: 2,
      ...(i === gpuAt ? { gpu: true, device: await createTestGpu() } : {}),
    })
  ));
}

/**
 * Two sequences through the chained stages and through lone sessions of `engine`, teacher-forced
 * on the engine's greedy tokens: both prompts in one forward, then decode steps with both rows
 * stacked, except every third step, where the second sits out (so their positions part).
 * `compare` sees each pair of logits; returns how many it saw.
 */
export async function runChain(
  stages: readonly StageBatch[],
  engine: Engine,
  steps: number,
  compare: (label: string, got: Float32Array, want: Float32Array) => void,
): Promise<number> {
  const slots = stages.map((s) => [s.acquire()!, s.acquire()!]);
  assert.ok(slots.every((pair) => pair[0] === slots[0][0] && pair[1] === slots[0][1]));
  const lone: Session[] = [engine.createSession(), engine.createSession()];
  const next = [[1, 274, 287, 269, 345, 400, 428], [1, 19, 250, 400]];
  let compared = 0;
  for (let step = 0; step < steps; step++) {
    const live = step % 3 === 2 ? [0] : [0, 1];
    const rows: StageRows[] = live.map((i) => ({ slot: slots[0][i], count: next[i].length }));
    const hidden = await stages[0].embed(live.flatMap((i) => next[i]));
    for (const stage of stages) await stage.forward(rows, hidden);
    const lastRows: number[] = [];
    rows.reduce((end, r) => (lastRows.push(end + r.count - 1), end + r.count), 0);
    const got = await stages.at(-1)!.logits(hidden, lastRows);
    for (const [j, i] of live.entries()) {
      const want = lone[i].evaluate(next[i]);
      compare(`sequence ${i} step ${step}`, got[j], want);
      compared++;
      for (const stage of stages) assert.equal(stage.position(slots[0][i]), lone[i].position);
      next[i] = [argmax(want)];
    }
  }
  return compared;
}

/**
 * The 6-layer model at `path` in three stages, the middle one on WebGPU, chained (runChain, 30
 * steps) against the whole CPU engine, within the WebGPU agreement tests' tolerance for the
 * weight type that `toleranceName` (a reference model's name) names: the middle stage holds the
 * CPU stage's weight bytes, only near-ties flip. `checkMiddle` adds checks of the stages first.
 */
export async function checkWebGpuMiddleStage(
  path: string,
  toleranceName: string,
  checkMiddle?: (gpuMiddle: StageBatch, cpuMiddle: StageBatch) => Promise<void>,
): Promise<void> {
  const stages = await loadStages(path, [[0, 2], [2, 4], [4, 6]], 1);
  const [cpuMiddle] = await loadStages(path, [[2, 4]]);
  const engine = await createCpuEngine({ path, ctxSize: CHAIN_CTX });
  const tolerance = roundingTolerance(toleranceName);
  const vsCpu = tracker(tolerance);
  let steps = 0;
  try {
    assert.equal(stages[1].info.backend, "webgpu");
    assert.equal(stages[1].info.weightBytes, cpuMiddle.info.weightBytes);
    await checkMiddle?.(stages[1], cpuMiddle);
    steps = await runChain(stages, engine, 30, vsCpu.step);
  } finally {
    stages.forEach((s) => s.close());
    cpuMiddle.close();
  }
  const { maxLogprob, nearTies } = vsCpu.result();
  console.log(
    `  ${steps} steps; max |Δ logprob| ${maxLogprob.toExponential(2)}; near-ties: ${
      nearTies.join(", ") || "none"
    }`,
  );
  assert.ok(steps >= 40, `only ${steps} steps`);
  assert.ok(nearTies.length <= steps / 10, `${nearTies.length} near-ties`);
  assert.ok(maxLogprob < tolerance, `log-probabilities differ from the CPU's by ${maxLogprob}`);
}
