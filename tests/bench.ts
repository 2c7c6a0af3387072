/**
 * `deno task bench`: prefill and decode speed of Grove's CPU engine, llama.cpp native (the
 * yardstick) and wllama (llama.cpp in WebAssembly) on stories260K and a generated 1.1 B llama
 * model (Q4_0 and Q4_K), against this machine's memory bandwidth. Speed goals live here, never
 * in tests. Each measurement runs in its own process (tests/bench/measure.ts).
 *
 * Then the relay under load (tests/bench/relay-load.ts). `--only inference`, `--only mesh` or
 * `--only relay` runs one part; the default runs all (inference includes the mesh).
 * `--only batching`, `--only split` (a model split across nodes, tests/bench/split.ts; with
 * `--short`, stories260K for a quick look) and `--only sampling` (constrained sampling's cost,
 * tests/bench/sampling.ts) run only when asked for, and so does `--only scale` (10 serving and
 * 50 client nodes in their own network namespaces under load and faults, tests/bench/scale.ts;
 * `--serving N --clients N --seconds N --inflight N` change its size; needs root).
 * `--only moe` runs only the generated MoE model's row (Grove CPU vs llama.cpp native).
 * `--only rss` runs only a serving node's resident memory on the 1.1 B Q4_0, CPU and WebGPU,
 * against the model file, its KV cache and an idle node's (tests/bench/rss.ts).
 * `--only reuse` runs only the prompt reuse table (a second turn's time to first token after a
 * 2,000-token first one, tests/bench/reuse.ts), which the default run includes too.
 *
 * The kernels' weight bandwidth per type is measured on its own: `npx deno run -A
 * tests/bench/cpu-matvec.ts` (CPU matVec) and `npx deno run -A tests/bench/webgpu-matvec.ts`
 * (the WebGPU matvec and matmul variants).
 */
import { GgmlType, modelConfigOf, openGguf, tokenizerFromMetadata } from "../inference/mod.ts";
import { measureBandwidth } from "./bench/bandwidth.ts";
import type { EngineId } from "./bench/measure.ts";
import {
  type BenchModel,
  benchModels,
  bigModelOptions,
  ensureModel,
  moeBenchModel,
} from "./bench/models.ts";
import { decodeRatios, markdownTable, type Row, verdict } from "./bench/report.ts";
import type { Measurement, RunPlan } from "./bench/types.ts";
import { relayLoad, relayLoadTable } from "./bench/relay-load.ts";
import { relaySiege, relaySiegeTable } from "./bench/relay-siege.ts";
import { meshBenchSection } from "./bench/mesh.ts";
import { batchingSection } from "./bench/batching.ts";
import { measureSplit, splitTable } from "./bench/split.ts";
import { measureSampling, samplingTable } from "./bench/sampling.ts";
import { runScale, scaleTable } from "./bench/scale.ts";
import { measureRss, rssTable } from "./bench/rss.ts";
import { reuseSection } from "./bench/reuse.ts";
import { STORIES } from "./helpers.ts";
import { median } from "./bench/stats.ts";

interface Job {
  engine: EngineId;
  label: string; // short name, for progress, errors and the verdict
  prompt: number;
  decode: number;
}

// The big model is slow on the WebAssembly and TypeScript paths: shorter runs keep the whole
// bench under ~10 minutes on two cores. The table prints the token counts used.
function jobsFor(model: BenchModel): Job[] {
  const full = { prompt: 128, decode: 64 };
  const short = { prompt: 64, decode: 32 }; // ~3 tok/s on the big model
  const vulkan = model.big ? { prompt: 32, decode: 8 } : full;
  return [
    { engine: "grove", label: "Grove CPU", ...(model.big ? short : full) },
    { engine: "llama-1", label: "llama.cpp native, 1 thread", ...full },
    { engine: "llama-2", label: "llama.cpp native, 2 threads", ...full },
    { engine: "wllama", label: "wllama", ...(model.big ? short : full) },
    { engine: "grove-webgpu", label: "Grove WebGPU", ...(model.big ? short : full) },
    // ~1 tok/s decode and ~2 tok/s prefill on the big model (NOTES): short runs.
    { engine: "llama-vulkan", label: "llama.cpp Vulkan (llvmpipe)", ...vulkan },
  ];
}

const CANDIDATES: EngineId[] = ["grove", "wllama"];
const JOB_TIMEOUT_MS = 240_000;

// Plain prose, so every tokenizer gives many tokens and wllama's re-tokenization of the decoded
// text lands near the intended count.
const PASSAGE = "Once upon a time, in a small village by the sea, there lived a girl named Lily. " +
  "Every morning she walked to the harbour to watch the fishing boats come home, and every " +
  "evening she told her little brother stories about the places the boats had been. ";

async function planFor(path: string, promptTokens: number, decode: number): Promise<RunPlan> {
  const tokenizer = tokenizerFromMetadata((await openGguf(path)).metadata);
  const ids = tokenizer.encode(PASSAGE.repeat(40)).slice(0, promptTokens);
  const body = ids[0] === tokenizer.bos ? ids.slice(1) : ids;
  return { promptTokens: ids, promptText: tokenizer.decode(body), decodeTokens: decode };
}

/**
 * Weight bytes read per decoded token: every matrix but the embedding (one row of it); of a
 * MoE's expert stacks only the used experts' share.
 */
async function streamedBytes(path: string): Promise<number> {
  const file = await openGguf(path);
  const tied = !file.tensor("output.weight");
  const moe = modelConfigOf(file).moe;
  const share = (name: string) => moe && /_exps\.weight$/.test(name) ? moe.used / moe.experts : 1;
  return file.tensors
    .filter((t) => tied || t.name !== "token_embd.weight")
    .reduce((sum, t) => sum + t.byteLength * share(t.name), 0);
}

async function runJob(job: Job, path: string, plan: RunPlan): Promise<Measurement> {
  const script = new URL("./bench/measure.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, job.engine, path, JSON.stringify(plan)],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(JOB_TIMEOUT_MS),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (out.success) return JSON.parse(stdout.split("\n").pop()!) as Measurement;
  const stderr = new TextDecoder().decode(out.stderr).trim();
  const why = out.signal ? `killed after ${JOB_TIMEOUT_MS / 1000} s` : `exit code ${out.code}`;
  const detail = stderr.split("\n").filter((l) => /error/i.test(l))[0] ?? stderr.slice(-300);
  throw new Error(`${why}: ${detail.replace(/\|/g, "/").slice(0, 200)}`);
}

function log(line: string) {
  console.error(line);
}

/** Each job runs this many times; the table shows the medians (this machine is noisy). */
const RUNS = 3;

/** Prefill and decode medians over runs of one job (each run in its own process). */
async function runJobMedian(job: Job, path: string, plan: RunPlan): Promise<Measurement> {
  const runs: Measurement[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runJob(job, path, plan));
  return {
    ...runs[0],
    prefillTokensPerSecond: median(runs.map((r) => r.prefillTokensPerSecond)),
    decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)),
  };
}

/** `only`: just these models and engines (`--only moe`: the MoE row vs llama.cpp). */
async function inferenceBench(only?: { models: BenchModel[]; engines: EngineId[] }) {
  const started = performance.now();
  log("measuring memory bandwidth (one thread)...");
  const bw = measureBandwidth();
  log("preparing models (the generated ones are built once, then cached)...");
  const models = only?.models ?? await benchModels();
  const rows: Row[] = [];
  const loads = [Deno.loadavg()[0]];
  for (const model of models) {
    const bytes = await streamedBytes(model.path);
    const jobs = jobsFor(model).filter((j) => !only || only.engines.includes(j.engine));
    for (const job of jobs) {
      const plan = await planFor(model.path, job.prompt, job.decode);
      const t = performance.now();
      let result: Row["result"];
      try {
        result = await runJobMedian(job, model.path, plan);
      } catch (e) {
        result = { engine: job.label, error: (e as Error).message };
      }
      const s = ((performance.now() - t) / 1000).toFixed(0);
      const what = "error" in result
        ? `FAILED ${result.error}`
        : `prefill ${result.prefillTokensPerSecond.toFixed(1)} tok/s, ` +
          `decode ${result.decodeTokensPerSecond.toFixed(2)} tok/s`;
      const load = Deno.loadavg()[0];
      loads.push(load);
      log(`  ${model.label} / ${job.label}: ${what} (${s} s, load ${load.toFixed(2)})`);
      const candidate = CANDIDATES.includes(job.engine);
      rows.push({ model: model.label, name: job.label, streamedBytes: bytes, result, candidate });
    }
  }
  const minutes = ((performance.now() - started) / 60000).toFixed(1);
  console.log("\n" + markdownTable(rows) + "\n");
  console.log(
    `Memory bandwidth, one thread: read ${bw.readGBps.toFixed(1)} GB/s (sum over 1 GiB), ` +
      `copy ${bw.copyGBps.toFixed(1)} GB/s (512 MiB, read + write).`,
  );
  console.log(
    "decode GB/s = weight bytes read per token (all matrices but the embedding) × decode tok/s.",
  );
  console.log(verdict(rows) + ". llama.cpp native is the yardstick, not a candidate.");
  console.log(decodeRatios(rows));
  console.log(
    `Noisy numbers: this machine (${navigator.hardwareConcurrency} cores) is shared with other ` +
      `work; 1-minute load average ${Math.min(...loads).toFixed(2)}–` +
      `${Math.max(...loads).toFixed(2)} during the runs (above ~1, llama.cpp's 2 threads fight ` +
      `another process for a core and collapse). Medians of ${RUNS} runs, each in its own process. ` +
      `Bench took ${minutes} min.`,
  );
}

async function relayBench() {
  const started = performance.now();
  log("relay load: the relay process with 1, 8 and 32 member clients on loopback...");
  const rows = await relayLoad({ log });
  console.log("\n" + relayLoadTable(rows) + "\n");
  console.log(
    "Relay load: `main.ts relay` with default limits; clients publish pre-signed kind 1 events " +
      "(8 in flight each, 100 ms back-off on rate-limited:) for 5 s. cap = what the " +
      "per-connection limit (600/min, burst 60) allows. REQ = kinds [1] limit 100 on the store " +
      "shown, REQ→EOSE from another client during the load. " +
      `Took ${((performance.now() - started) / 1000).toFixed(0)} s.`,
  );
  const siege = await relaySiege(log);
  console.log("\n" + relaySiegeTable(siege) + "\n");
  console.log(
    "Relay under siege: latencies (50 samples each) quiet, then while 1,000 idle stranger " +
      "WebSockets (16 from each of 63 loopback addresses, the per-address cap) and one " +
      "stranger's AUTH flood (2,000 frames/s, two valid events in turn) are held. REQ = kinds " +
      "[1] limit 100 on 2,000 stored events; EVENT→OK is the owner's.",
  );
}

const PARTS = [
  "relay",
  "inference",
  "mesh",
  "batching",
  "split",
  "sampling",
  "scale",
  "moe",
  "reuse",
  "rss",
] as const;

function parseOnly(args: string[]): typeof PARTS[number] | undefined {
  const i = args.indexOf("--only");
  if (i < 0) return undefined;
  const v = PARTS.find((p) => p === args[i + 1]);
  if (!v) {
    throw new Error(
      `--only takes ${PARTS.join(", ")}, not ${JSON.stringify(args[i + 1] ?? "")}`,
    );
  }
  return v;
}

/** The mesh's cost: tok/s and TTFT through a client node vs the local engine (bench/mesh.ts). */
async function meshBench() {
  log("mesh: client node → serving node process vs the local engine, same model...");
  console.log("\n" + await meshBenchSection(await benchModels()) + "\n");
}

/** Continuous batching: aggregate decode tok/s, 1 vs 8 sequences (bench/batching.ts). */
async function batchingBench() {
  const big = (await benchModels()).find((m) => m.big)!; // the 1.1 B Q4_0
  log(`batching: 1 vs 8 sequences on ${big.label}, CPU then WebGPU...`);
  console.log("\n" + await batchingSection(big.path, big.label) + "\n");
}

/** Prompt reuse: a conversation's second turn, its prefix cached vs read again (bench/reuse.ts). */
async function reuseBench() {
  console.log("\n" + await reuseSection(log) + "\n");
}

/** A model split across nodes vs one node (bench/split.ts); `short`: stories260K, few tokens. */
async function splitBench(short: boolean) {
  const started = performance.now();
  const o = short
    ? { path: STORIES, label: "stories260K F32", tokens: 16, runs: 2, ctxSize: 256 }
    : { ...await bigQ40(), tokens: 32, runs: 7, ctxSize: 256 };
  log(`split: single node vs 2 and 3 stages on ${o.label}...`);
  console.log("\n" + splitTable(await measureSplit({ ...o, log })));
  console.log(`Took ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
}

/** Constrained sampling's cost on the 1.1 B Q4_0 and stories260K (bench/sampling.ts). */
async function samplingBench() {
  const big = await bigQ40();
  log(`sampling: free vs JSON-schema-constrained decode on stories260K and ${big.label}...`);
  const rows = [
    await measureSampling(STORIES, "stories260K F32", 5, 48, log),
    await measureSampling(big.path, big.label, 7, 40, log),
  ];
  console.log("\n" + samplingTable(rows) + "\n");
}

/** The mesh under load and faults on the simulated network (bench/scale.ts). */
async function scaleBench(args: string[]) {
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    if (i < 0) return fallback;
    const v = Number(args[i + 1]);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} takes a positive integer`);
    return v;
  };
  const started = performance.now();
  const r = await runScale({
    serving: flag("serving", 10),
    clients: flag("clients", 50),
    seconds: flag("seconds", 120),
    inflight: flag("inflight", 200),
    log,
  });
  console.log("\n" + scaleTable(r));
  console.log(`Took ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
}

/** A serving node's resident memory, CPU and WebGPU, against issue 16's bound (bench/rss.ts). */
async function rssBench() {
  const started = performance.now();
  const big = await bigQ40();
  log(`rss: an idle node, then serving nodes of ${big.label} on the CPU and WebGPU...`);
  console.log("\n" + rssTable(await measureRss(log), big.label));
  console.log(`Took ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
}

/** The 1.1 B Q4_0 alone (benchModels would build the Q4_K too). */
async function bigQ40(): Promise<{ path: string; label: string }> {
  const path = await ensureModel(bigModelOptions(GgmlType.Q4_0));
  const size = (await Deno.stat(path)).size / 1e6;
  return { path, label: `llama 1.1B Q4_0 (${size.toFixed(0)} MB)` };
}

async function main() {
  const only = parseOnly(Deno.args);
  if (only === "split") return await splitBench(Deno.args.includes("--short"));
  if (only === "batching") return await batchingBench();
  if (only === "sampling") return await samplingBench();
  if (only === "scale") return await scaleBench(Deno.args);
  if (only === "rss") return await rssBench();
  if (only === "reuse") return await reuseBench();
  if (only === "moe") {
    const engines: EngineId[] = ["grove", "llama-1", "llama-2"];
    return await inferenceBench({ models: [await moeBenchModel()], engines });
  }
  if (only === undefined || only === "inference") await inferenceBench();
  if (only === undefined) await reuseBench();
  if (only !== "relay") await meshBench();
  if (only === undefined || only === "relay") await relayBench();
}

if (import.meta.main) await main();
