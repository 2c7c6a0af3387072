/**
 * Continuous batching's gain: aggregate decode tok/s of 1 sequence vs 8
 * concurrent ones on the CPU and 16 on WebGPU, on the same batched engine
 * (inference/batch.ts), on the generated 1.1 B Q4_0 model. Each sequence first prefills a
 * short prompt into its own slot; then every step feeds one token per
 * sequence (greedy), which is what the scheduler does in steady decode. The lone sequence and
 * the group step in alternating rounds (stats.ts: alternatingRates), so both meet the same load.
 *
 * Beside them llama.cpp native (llama-batching.ts): 1 vs 8 sequences of one context on the CPU at
 * 2 threads, the same prompts and steps, so Grove's CPU ratio has its yardstick from the same run.
 *
 * Each engine runs in its own process: `deno run -A tests/bench/batching.ts
 * <cpu|webgpu|llama> <model.gguf> [steps] [width]` prints one JSON line.
 */
import { type BatchEngine, createBatchedCpuEngine } from "../../inference/batch.ts";
import { createBatchedWebGpuEngine } from "../../inference/webgpu/batch-forward.ts";
import { measureLlamaBatching } from "./llama-batching.ts";
import { alternatingRates, median, ROUNDS } from "./stats.ts";
import { runChildJson } from "./child.ts";

export interface BatchingResult {
  engine: string;
  adapter: string;
  single: number; // decode tok/s, one sequence
  concurrent: number; // aggregate decode tok/s, `width` sequences
  width: number;
  steps: number;
}

type Kind = "cpu" | "webgpu" | "llama";

/** Concurrent sequences and the ratio over one sequence that issue 16 asks of each engine. */
export const WIDTHS = { cpu: 8, webgpu: 16, llama: 8 } as const;
const TARGETS = { cpu: 3, webgpu: 4 } as const;
const PROMPT = 16;
const LLAMA_THREADS = 2; // Grove's CPU kernels take two threads where there are two cores

/** Sequence `i`'s prompt: the same for every engine. */
const promptOf = (i: number) => Array.from({ length: PROMPT }, (_, j) => 1 + i + j);

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/**
 * Decode tok/s of one sequence and of `width` sequences stepping together (one token each a
 * step), `steps` steps each after a warm-up step, the two in alternating rounds.
 */
async function decodeRates(
  batch: BatchEngine,
  width: number,
  steps: number,
): Promise<{ single: number; concurrent: number }> {
  const lone = [batch.acquire()!];
  const group = Array.from({ length: width }, () => batch.acquire()!);
  const next = new Map<number, number>();
  for (const [i, slot] of [lone[0], ...group].entries()) {
    next.set(slot, argmax((await batch.step([{ slot, tokens: promptOf(i % width) }]))[0]));
  }
  const stepAll = async (slots: number[]) => {
    const out = await batch.step(slots.map((slot) => ({ slot, tokens: [next.get(slot)!] })));
    slots.forEach((slot, i) => next.set(slot, argmax(out[i])));
  };
  const rates = await alternatingRates(steps, width, () => stepAll(lone), () => stepAll(group));
  for (const slot of [...lone, ...group]) batch.release(slot);
  return rates;
}

export async function measureBatching(
  kind: Kind,
  path: string,
  steps: number,
  width: number = WIDTHS[kind],
): Promise<BatchingResult> {
  if (kind === "llama") {
    const o = { steps, width, threads: LLAMA_THREADS, prompt: promptOf };
    const r = await measureLlamaBatching(path, o);
    const adapter = `CPU, ${LLAMA_THREADS} threads`;
    const { single, concurrent } = r;
    return { engine: "llama.cpp native", adapter, single, concurrent, width, steps };
  }
  const ctxSize = PROMPT + steps + ROUNDS + 8;
  const maxSlots = width + 1;
  const { engine, batch } = kind === "cpu"
    ? await createBatchedCpuEngine({ path, ctxSize, maxSlots })
    : await createBatchedWebGpuEngine({ path, ctxSize, maxSlots });
  const { single, concurrent } = await decodeRates(batch, width, steps);
  (engine as { close?: () => void }).close?.();
  const name = kind === "cpu" ? "Grove CPU" : "Grove WebGPU";
  return { engine: name, adapter: engine.info.adapter, single, concurrent, width, steps };
}

/** The section for `deno task bench --only batching`: one process per engine. */
export async function batchingSection(path: string, label: string): Promise<string> {
  const lines = [
    `Continuous batching on ${label}: aggregate decode tok/s, 1 vs ${WIDTHS.cpu} sequences on ` +
    `the CPU (target ≥ ${TARGETS.cpu}×) and 1 vs ${WIDTHS.webgpu} on WebGPU (target ≥ ` +
    `${TARGETS.webgpu}×); batched steps, one decode token per sequence per step; llama.cpp ` +
    `native, ${WIDTHS.llama} sequences of one context at ${LLAMA_THREADS} threads, is the yardstick`,
    "",
    "| engine | adapter | 1 sequence tok/s | n sequences | n sequences tok/s | ratio |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  const ratioOf: Partial<Record<Kind, number>> = {};
  for (const kind of ["cpu", "llama", "webgpu"] as const) {
    const runs: BatchingResult[] = [];
    try {
      for (let i = 0; i < RUNS; i++) runs.push(await runOnce(kind, path));
    } catch (e) {
      lines.push(`| ${kind} | FAILED: ${(e as Error).message} | | | | |`);
      continue;
    }
    const ratios = runs.map((r) => r.concurrent / r.single);
    const ratio = median(ratios);
    ratioOf[kind] = ratio;
    const r = runs[ratios.indexOf(ratio)];
    const target = kind === "llama" ? undefined : TARGETS[kind];
    const verdict = target === undefined
      ? "(yardstick)"
      : ratio >= target
      ? `(meets ${target}×)`
      : `(below ${target}×)`;
    lines.push(
      `| ${r.engine} | ${r.adapter} | ${r.single.toFixed(2)} | ${r.width} | ` +
        `${r.concurrent.toFixed(2)} | ${ratio.toFixed(2)}× ${verdict}; runs ` +
        `${ratios.map((x) => x.toFixed(2)).join(", ")} |`,
    );
  }
  lines.push("", `The run with the median ratio of ${RUNS}, each in its own process.`);
  if (ratioOf.cpu !== undefined && ratioOf.llama !== undefined) {
    lines.push(
      `${WIDTHS.cpu} CPU streams over one: Grove ${ratioOf.cpu.toFixed(2)}×, llama.cpp ` +
        `${ratioOf.llama.toFixed(2)}× (target for Grove ≥ ${TARGETS.cpu}×).`,
    );
  }
  return lines.join("\n");
}

const RUNS = 3;

/** One measurement in a fresh process. */
async function runOnce(kind: Kind, path: string): Promise<BatchingResult> {
  return await runChildJson<BatchingResult>(new URL(import.meta.url).pathname, [kind, path]);
}

if (import.meta.main) {
  const [kind, path, steps, width] = Deno.args;
  if ((kind !== "cpu" && kind !== "webgpu" && kind !== "llama") || !path) {
    throw new Error("usage: batching.ts <cpu|webgpu|llama> <model.gguf> [steps] [width]");
  }
  const result = await measureBatching(
    kind,
    path,
    Number(steps ?? 24),
    width ? Number(width) : undefined,
  );
  console.log(JSON.stringify(result));
  Deno.exit(0); // llama.cpp's addon can keep the event loop alive after its dispose
}
