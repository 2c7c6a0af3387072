/**
 * llama.cpp's resident memory beside rss.ts's serving nodes: one process (Deno with
 * node-llama-cpp's CPU build, 2 threads) loads the same GGUF with the same context size and
 * answers the same prompt (16 greedy tokens); its RSS against the model file + its KV cache (F16,
 * the whole context, as llama.cpp allocates it at context creation) + the same process before the
 * model loads (llama.cpp's library loaded, no model: its "idle node"), + 10 %.
 *
 * Runs in its own process: `deno run -A tests/bench/rss-llama.ts MODEL CTX PROMPT_JSON` prints
 * one JSON line.
 */
import { modelConfigOf, openGguf } from "../../inference/mod.ts";
import { memoryKiB } from "../support/process-memory.ts";
import { nextToken, openLlama } from "./llama-runner.ts";
import { runChildJson } from "./child.ts";

export interface LlamaRssRow {
  engine: string;
  ctxSize: number;
  promptTokens: number;
  fileBytes: number;
  kvBytes: number; // K and V in F16 for every layer and context cell
  idleBytes: number; // the process with llama.cpp loaded, before the model
  loadedBytes: number; // the model and its context made
  servingBytes: number; // after the prompt and 16 tokens
  fileBackedBytes: number; // of servingBytes, mapped file pages (RssFile): the mmapped model
  peakBytes: number;
}

const THREADS = 2;
const ANSWER = 16;
const MiB = 1024 * 1024;

async function kvBytes(path: string, cells: number): Promise<number> {
  const c = modelConfigOf(await openGguf(path));
  return c.layers * cells * c.kvHeads * (c.headDim + c.valueDim) * 2;
}

async function measure(path: string, ctxSize: number, prompt: number[]): Promise<LlamaRssRow> {
  const rss = (field: "VmRSS" | "VmHWM" = "VmRSS") => memoryKiB(Deno.pid, field) * 1024;
  const llama = await openLlama(THREADS);
  const idleBytes = rss();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: ctxSize,
    sequences: 1,
    threads: THREADS,
  });
  const loadedBytes = rss();
  const sequence = context.getSequence();
  let token = await nextToken(sequence, prompt);
  for (let i = 1; i < ANSWER; i++) token = await nextToken(sequence, [token]);
  const servingBytes = rss(), peakBytes = rss("VmHWM");
  const status = await Deno.readTextFile("/proc/self/status");
  const fileBackedBytes = Number(/^RssFile:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
  const row: LlamaRssRow = {
    engine: `llama.cpp native CPU, ${THREADS} threads`,
    ctxSize: context.contextSize,
    promptTokens: prompt.length,
    fileBytes: (await Deno.stat(path)).size,
    kvBytes: await kvBytes(path, context.contextSize),
    idleBytes,
    loadedBytes,
    servingBytes,
    fileBackedBytes,
    peakBytes,
  };
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return row;
}

/** measure() in a fresh process: its RSS is llama.cpp's alone. */
export async function measureLlamaRss(
  path: string,
  ctxSize: number,
  prompt: number[],
): Promise<LlamaRssRow> {
  const script = new URL(import.meta.url).pathname;
  const args = [path, String(ctxSize), "-"];
  return await runChildJson<LlamaRssRow>(script, args, JSON.stringify(prompt));
}

/** RSS over (file + KV + idle) × 1.1: ≤ 1 meets the bound. */
export function llamaBoundRatio(r: LlamaRssRow): number {
  return r.servingBytes / ((r.fileBytes + r.kvBytes + r.idleBytes) * 1.1);
}

/** The llama.cpp row, in the columns rss.ts's table has for it. */
export function llamaRssTable(r: LlamaRssRow | { error: string }, label: string): string {
  const mib = (b: number) => (b / MiB).toFixed(0);
  const lines = [
    `llama.cpp on ${label}, the same context and prompt, MiB`,
    "",
    "| engine | ctx | prompt | model file | KV (F16) | idle process | bound | RSS loaded | " +
    "RSS serving | of it file-backed | peak | RSS / bound |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  if ("error" in r) {
    lines.push(`| llama.cpp | FAILED: ${r.error} |${" |".repeat(10)}`);
  } else {
    const bound = (r.fileBytes + r.kvBytes + r.idleBytes) * 1.1;
    const ratio = llamaBoundRatio(r);
    lines.push(
      `| ${r.engine} | ${r.ctxSize} | ${r.promptTokens} | ${mib(r.fileBytes)} | ` +
        `${mib(r.kvBytes)} | ${mib(r.idleBytes)} | ${mib(bound)} | ${mib(r.loadedBytes)} | ` +
        `${mib(r.servingBytes)} | ${mib(r.fileBackedBytes)} | ${mib(r.peakBytes)} | ` +
        `${ratio.toFixed(2)} ` +
        `${ratio <= 1 ? "(meets)" : "(over)"} |`,
    );
  }
  lines.push(
    "",
    "idle process = the same Deno process with llama.cpp's library loaded, before the model " +
      "(no HTTP or mesh). The model is mmapped: its pages count once read (file-backed); where " +
      "the CPU has AVX2, llama.cpp's CPU build also repacks Q4_0 weights for its interleaved " +
      "kernels into memory of its own (ggml-cpu/repack.cpp), a second copy beside the file's.",
  );
  return lines.join("\n");
}

if (import.meta.main) {
  const [path, ctx] = Deno.args;
  const prompt = JSON.parse(await new Response(Deno.stdin.readable).text()) as number[];
  console.log(JSON.stringify(await measure(path, Number(ctx), prompt)));
  Deno.exit(0); // llama.cpp's addon can keep the event loop alive after its dispose
}
