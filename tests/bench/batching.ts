/**
 * Continuous batching's gain: aggregate decode tok/s of 1 sequence vs 8
 * concurrent ones on the CPU and 16 on WebGPU, on the same batched engine
 * (inference/batch.ts), on the generated 1.1 B Q4_0 model. Each sequence first prefills a
 * short prompt into its own slot; then every step feeds one token per
 * sequence (greedy), which is what the scheduler does in steady decode.
 *
 * Each engine runs in its own process: `deno run -A tests/bench/batching.ts
 * <cpu|webgpu> <model.gguf> [steps] [width]` prints one JSON line.
 */
import { type BatchEngine, createBatchedCpuEngine } from "../../inference/batch.ts";
import { createBatchedWebGpuEngine } from "../../inference/webgpu/batch-forward.ts";
import { median } from "./stats.ts";

export interface BatchingResult {
  engine: string;
  adapter: string;
  single: number; // decode tok/s, one sequence
  concurrent: number; // aggregate decode tok/s, `width` sequences
  width: number;
  steps: number;
}

/** Concurrent sequences and the ratio over one sequence that issue 16 asks of each engine. */
export const WIDTHS = { cpu: 8, webgpu: 16 } as const;
const TARGETS = { cpu: 3, webgpu: 4 } as const;
const PROMPT = 16;

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Decode tok/s of `width` sequences stepping together for `steps` steps (after a warm-up step). */
async function decodeRate(batch: BatchEngine, width: number, steps: number): Promise<number> {
  const slots = Array.from({ length: width }, () => batch.acquire()!);
  let next: number[] = [];
  for (const [i, slot] of slots.entries()) {
    const prompt = Array.from({ length: PROMPT }, (_, j) => 1 + i + j);
    next.push(argmax((await batch.step([{ slot, tokens: prompt }]))[0]));
  }
  next = (await batch.step(slots.map((slot, i) => ({ slot, tokens: [next[i]] })))).map(argmax);
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    next = (await batch.step(slots.map((slot, i) => ({ slot, tokens: [next[i]] })))).map(argmax);
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const slot of slots) batch.release(slot);
  return (width * steps) / seconds;
}

export async function measureBatching(
  kind: "cpu" | "webgpu",
  path: string,
  steps: number,
  width: number = WIDTHS[kind],
): Promise<BatchingResult> {
  const ctxSize = PROMPT + steps + 8;
  const { engine, batch } = kind === "cpu"
    ? await createBatchedCpuEngine({ path, ctxSize, maxSlots: width })
    : await createBatchedWebGpuEngine({ path, ctxSize, maxSlots: width });
  const single = await decodeRate(batch, 1, steps);
  const concurrent = await decodeRate(batch, width, steps);
  (engine as { close?: () => void }).close?.();
  return { engine: kind, adapter: engine.info.adapter, single, concurrent, width, steps };
}

/** The section for `deno task bench --only batching`: one process per engine. */
export async function batchingSection(path: string, label: string): Promise<string> {
  const lines = [
    `Continuous batching on ${label}: aggregate decode tok/s, 1 vs ${WIDTHS.cpu} sequences on ` +
    `the CPU (target ≥ ${TARGETS.cpu}×) and 1 vs ${WIDTHS.webgpu} on WebGPU (target ≥ ` +
    `${TARGETS.webgpu}×); batched steps, one decode token per sequence per step`,
    "",
    "| engine | adapter | 1 sequence tok/s | n sequences | n sequences tok/s | ratio |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const kind of ["cpu", "webgpu"] as const) {
    const runs: BatchingResult[] = [];
    try {
      for (let i = 0; i < RUNS; i++) runs.push(await runOnce(kind, path));
    } catch (e) {
      lines.push(`| ${kind} | FAILED: ${(e as Error).message} | | | | |`);
      continue;
    }
    const ratios = runs.map((r) => r.concurrent / r.single);
    const ratio = median(ratios);
    const r = runs[ratios.indexOf(ratio)];
    const target = TARGETS[kind];
    lines.push(
      `| ${r.engine} | ${r.adapter} | ${r.single.toFixed(2)} | ${r.width} | ` +
        `${r.concurrent.toFixed(2)} | ${ratio.toFixed(2)}× ` +
        `${ratio >= target ? `(meets ${target}×)` : `(below ${target}×)`}; runs ` +
        `${ratios.map((x) => x.toFixed(2)).join(", ")} |`,
    );
  }
  lines.push("", `The run with the median ratio of ${RUNS}, each in its own process.`);
  return lines.join("\n");
}

const RUNS = 3;

/** One measurement in a fresh process. */
async function runOnce(kind: "cpu" | "webgpu", path: string): Promise<BatchingResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, kind, path],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(600_000),
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(err.replace(/\|/g, "/").slice(0, 200));
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  return JSON.parse(text.split("\n").pop()!) as BatchingResult;
}

if (import.meta.main) {
  const [kind, path, steps, width] = Deno.args;
  if ((kind !== "cpu" && kind !== "webgpu") || !path) {
    throw new Error("usage: batching.ts <cpu|webgpu> <model.gguf> [steps] [width]");
  }
  const result = await measureBatching(
    kind,
    path,
    Number(steps ?? 24),
    width ? Number(width) : undefined,
  );
  console.log(JSON.stringify(result));
}
