/**
 * `deno task bench --only split`: what splitting a model across nodes costs, on loopback with
 * real processes as users run them (tests/mesh-harness.ts: `main.ts relay`, `serve` nodes and a
 * `consume` client node). Three meshes live side by side, each with its own relay and client:
 * one whole-model node; two nodes whose `--max-memory` needs exactly 2 stages; three whose
 * budget needs exactly 3 (budgets from the planner itself, mesh/stage-plan.ts). The runs
 * alternate between them so a load change on this shared machine hits all three alike.
 *
 * Per run, one greedy streamed chat request through the client node: wall-clock time to first
 * token and decode tok/s, and the coordinator's own `timings` (predicted_per_second, prompt_ms).
 * The per-hop overhead P = (split ms/token − single ms/token) / (stages − 1): the client enters
 * at stage 0, whose node coordinates and holds stage 0 in process, so a k-stage step costs k − 1
 * round trips (star topology). A bare round trip (split-hop.ts: back to back, and after the idle
 * pause a stage sits through while the others compute) says how much of P the wire is.
 *
 * On one machine the nodes share its cores: one stage computes at a time (a step walks the stages
 * in order), each process with the same WASM threads the whole node uses.
 */
import {
  modelConfigOf,
  type ModelShape,
  modelShapeOf,
  openGguf,
  stageBytes,
} from "../../inference/mod.ts";
import { planStages } from "../../mesh/mod.ts";
import { readSse } from "../../web/mod.ts";
import {
  type Mesh,
  newKey,
  type NodeProcess,
  startMesh,
  waitForAvailability,
} from "../mesh-harness.ts";
import { memoryKiB } from "../support/process-memory.ts";
import { hopInChild, type HopResult } from "./split-hop.ts";
import { median } from "./stats.ts";

export interface SplitBenchOptions {
  path: string;
  label: string;
  /** Tokens asked for per run (greedy; a model may stop earlier). */
  tokens: number;
  runs: number;
  ctxSize: number;
  log: (line: string) => void;
}

interface Run {
  ttftMs: number;
  wallTokPerS: number;
  tokPerS: number; // the coordinator's predicted_per_second
  promptMs: number;
  promptTokens: number;
  tokens: number;
  text: string;
  /** Time between consecutive streamed tokens, ms. */
  gapsMs: number[];
}

interface NodeMemory {
  name: string;
  layers: string;
  rssKiB: number;
  peakKiB: number;
}

interface Config {
  name: string;
  stages: number;
  budget?: number;
  mesh: Mesh;
  client: NodeProcess;
  nodes: { name: string; node: NodeProcess }[];
  runs: Run[];
}

/** The model's needs as every node computes them from the GGUF header. */
async function shapeOf(
  path: string,
  ctx: number,
): Promise<{ shape: ModelShape; whole: number; dim: number }> {
  const file = await openGguf(path);
  const config = modelConfigOf(file);
  const shape = modelShapeOf(file, config, ctx);
  return { shape, whole: stageBytes(shape, 0, shape.layerBytes.length), dim: config.dim };
}

const same = (n: number, budget: number) =>
  Array.from({ length: n }, (_, i) => ({ peerId: `p${i}`, memoryBytes: budget }));

/**
 * A `--max-memory` with which `stages` equal nodes make a plan of exactly that many stages:
 * 2 % over the least budget that does, checked against the planner (fewer nodes must not do).
 */
export function budgetFor(shape: ModelShape, whole: number, stages: number): number {
  const fits = (b: number) => planStages(shape, same(stages, b)).ok;
  let lo = 1;
  let hi = whole;
  while (hi - lo > 1024) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) hi = mid;
    else lo = mid;
  }
  const budget = Math.ceil(hi * 1.02);
  const plan = planStages(shape, same(stages, budget));
  if (!plan.ok || plan.plan.stages.length !== stages) {
    throw new Error(`no budget makes a ${stages}-stage plan`);
  }
  if (planStages(shape, same(stages - 1, budget)).ok) {
    throw new Error(`${stages - 1} nodes of ${budget} bytes already hold the model`);
  }
  return budget;
}

const MESSAGES = [{ role: "user", content: "Tell me a story about a cat." }];

/** One greedy streamed chat request through the client node, timed as the caller sees it. */
async function timeOne(client: NodeProcess, model: string, maxTokens: number): Promise<Run> {
  const t0 = performance.now();
  const res = await fetch(`${client.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      messages: MESSAGES,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
    }),
    signal: AbortSignal.timeout(300_000),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let last = 0;
  let chunks = 0;
  let text = "";
  let timings: Record<string, number> | undefined;
  const gapsMs: number[] = [];
  for await (const data of readSse(res.body!)) {
    if (data === "[DONE]") continue;
    const chunk = JSON.parse(data);
    if (chunk.error) throw new Error(`${chunk.error.code}: ${chunk.error.message}`);
    if (chunk.timings) timings = chunk.timings;
    const content = chunk.choices?.[0]?.delta?.content;
    if (!content) continue;
    const now = performance.now();
    if (chunks++ === 0) first = now;
    else gapsMs.push(now - last);
    last = now;
    text += content;
  }
  if (!timings) throw new Error("the answer carried no timings");
  return {
    ttftMs: first - t0,
    wallTokPerS: chunks > 1 ? (chunks - 1) / ((last - first) / 1000) : 0,
    tokPerS: timings.predicted_per_second,
    promptMs: timings.prompt_ms,
    promptTokens: timings.prompt_n,
    tokens: timings.predicted_n,
    text,
    gapsMs,
  };
}

/** A mesh with `stages` serving nodes (1: the whole model) and a client node that lists it. */
async function startConfig(
  o: SplitBenchOptions,
  stages: number,
  shape: ModelShape,
  whole: number,
): Promise<Config> {
  const budget = stages > 1 ? budgetFor(shape, whole, stages) : undefined;
  const name = stages === 1 ? "single node" : `${stages}-stage split`;
  const mesh = await startMesh();
  try {
    const flags = ["--model", o.path, "--ctx-size", String(o.ctxSize)];
    if (budget !== undefined) flags.push("--max-memory", String(budget));
    const keys = [mesh.owner, ...Array.from({ length: stages - 1 }, newKey)];
    for (const k of keys.slice(1)) await mesh.addMember(k.pubkey);
    const nodes = [];
    for (const [i, k] of keys.entries()) {
      const nodeName = stages === 1 ? "whole" : `stage-${i}`;
      nodes.push({ name: nodeName, node: await mesh.serve(nodeName, k, flags) });
    }
    const clientKey = newKey();
    await mesh.addMember(clientKey.pubkey);
    const client = await mesh.consume(clientKey);
    return { name, stages, budget, mesh, client, nodes, runs: [] };
  } catch (err) {
    await mesh.close();
    throw err;
  }
}

/** Each serving node's memory, and the layers it holds (from its /api/status). */
async function memoryOf(c: Config): Promise<NodeMemory[]> {
  const all = await Promise.all(c.nodes.map(async ({ name, node }) => {
    const status = await (await fetch(`${node.url}/api/status`)).json();
    const held = status.split?.loaded as { layers: [number, number] }[] | undefined;
    const layers = held === undefined
      ? "all"
      : held.map((l) => `[${l.layers[0]}, ${l.layers[1]})`).join(" ") || "none";
    const pid = node.child.pid;
    const first = held?.[0]?.layers[0] ?? 0;
    return { name, layers, first, rssKiB: memoryKiB(pid), peakKiB: memoryKiB(pid, "VmHWM") };
  }));
  return all.sort((a, b) => a.first - b.first).map(({ first: _, ...m }) => m);
}

/**
 * A pause before each run: the previous run's background work (a client node refills its spare
 * stream after a request) is not charged to the next configuration.
 */
const settle = () => new Promise((r) => setTimeout(r, 50));

export interface SplitBenchResult {
  label: string;
  tokens: number;
  runs: number;
  ctxSize: number;
  configs: {
    name: string;
    stages: number;
    budget?: number;
    runs: Run[];
    memory: NodeMemory[];
  }[];
  hop: HopResult | Error;
}

export async function measureSplit(o: SplitBenchOptions): Promise<SplitBenchResult> {
  const { shape, whole, dim } = await shapeOf(o.path, o.ctxSize);
  const model = o.path.split("/").pop()!.replace(/\.gguf$/i, "");
  const configs: Config[] = [];
  try {
    for (const stages of [1, 2, 3]) {
      o.log(
        `  split / ${o.label}: starting the ${
          stages === 1 ? "whole-model node" : `${stages} stage nodes`
        }...`,
      );
      const c = await startConfig(o, stages, shape, whole);
      configs.push(c);
      await waitForAvailability(c.client.url, (a) => a.models.some((m) => m.id === model), 180_000);
      // Warm-up: the first request dials the serving node and (split) opens the stage links.
      await timeOne(c.client, model, 4);
    }
    for (let i = 0; i < o.runs; i++) {
      // Every other round backwards: a load that drifts within a round favours no configuration.
      for (const c of i % 2 === 0 ? configs : [...configs].reverse()) {
        await settle();
        const r = await timeOne(c.client, model, o.tokens);
        c.runs.push(r);
        o.log(
          `  split / ${c.name} run ${i + 1}: TTFT ${r.ttftMs.toFixed(0)} ms, ` +
            `${r.tokPerS.toFixed(2)} tok/s (${r.tokens} tokens), load ${
              Deno.loadavg()[0].toFixed(2)
            }`,
        );
      }
    }
    const out: SplitBenchResult["configs"] = [];
    for (const c of configs) {
      out.push({
        name: c.name,
        stages: c.stages,
        budget: c.budget,
        runs: c.runs,
        memory: await memoryOf(c),
      });
    }
    // The meshes go before the hop is timed: their idle processes would only add noise.
    for (const c of configs.splice(0)) await c.mesh.close();
    o.log("  split: a bare /grove/stage/1 round trip of one hidden row...");
    const hop = await hopInChild(dim, 2000);
    return {
      label: o.label,
      tokens: o.tokens,
      runs: o.runs,
      ctxSize: o.ctxSize,
      configs: out,
      hop,
    };
  } finally {
    for (const c of configs) await c.mesh.close();
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(0);

/** The printed section: one row per configuration, then the check and the bare hop. */
export function splitTable(r: SplitBenchResult): string {
  const rows = r.configs.map((c) => ({
    c,
    tokPerS: median(c.runs.map((x) => x.tokPerS)),
    wall: median(c.runs.map((x) => x.wallTokPerS)),
    // Another process's preemption (this machine is shared) stretches a few tokens of a run and
    // so its mean rate, but not the median time per token.
    msPerToken: median(c.runs.flatMap((x) => x.gapsMs)),
    ttft: median(c.runs.map((x) => x.ttftMs)),
    promptMs: median(c.runs.map((x) => x.promptMs)),
  }));
  const single = rows[0];
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const lines = [
    `Split on loopback, ${r.label}: relay, serving nodes and a client node as processes; ` +
    `greedy chat, ${r.tokens} tokens × ${r.runs} runs (the configurations take turns), ` +
    `ctx ${r.ctxSize}, ${rows[0].c.runs[0]?.promptTokens ?? "?"} prompt tokens.`,
    "",
    "| configuration | --max-memory | decode tok/s | vs single | ms/token | vs single | " +
    "P ms/hop | wall tok/s | TTFT ms | prompt_ms | same text | RSS MiB per node (peak) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const x of rows) {
    const hops = x.c.stages - 1;
    const p = hops > 0 ? ((x.msPerToken - single.msPerToken) / hops).toFixed(2) : "—";
    const sameText = x === single
      ? "—"
      : x.c.runs.every((run, i) => run.text === single.c.runs[i]?.text)
      ? "yes"
      : "NO";
    const mem = x.c.memory.map((m) => `${m.layers}: ${mib(m.rssKiB)} (${mib(m.peakKiB)})`)
      .join("; ");
    lines.push(
      `| ${x.c.name} | ${x.c.budget ? `${(x.c.budget / 2 ** 20).toFixed(0)} MiB` : "—"} | ` +
        `${x.tokPerS.toFixed(2)} | ${pct(x.tokPerS / single.tokPerS)} | ` +
        `${x.msPerToken.toFixed(1)} | ${pct(single.msPerToken / x.msPerToken)} | ${p} | ` +
        `${x.wall.toFixed(2)} | ${x.ttft.toFixed(0)} | ${x.promptMs.toFixed(0)} | ${sameText} | ` +
        `${mem} |`,
    );
  }
  const two = rows.find((x) => x.c.stages === 2);
  if (two) {
    const byToken = single.msPerToken / two.msPerToken;
    const byRate = two.tokPerS / single.tokPerS;
    lines.push(
      "",
      `2-stage decode ≥ 90 % of single-node decode: ${byToken >= 0.9 ? "PASS" : "FAIL"} ` +
        `(${pct(byToken)} by the median time per token; ${pct(byRate)} by the runs' median ` +
        `decode tok/s).`,
    );
  }
  const ms = (x: number) => x.toFixed(2);
  const hop = r.hop instanceof Error
    ? `failed: ${r.hop.message}`
    : `median ${ms(r.hop.busy.medianMs)} ms back to back (p10 ${ms(r.hop.busy.p10Ms)}, p90 ` +
      `${ms(r.hop.busy.p90Ms)}; ${r.hop.busy.steps} steps), ${ms(r.hop.idle.medianMs)} ms after ` +
      `${r.hop.idle.pauseMs} ms idle as in a split (p10 ${ms(r.hop.idle.p10Ms)}, p90 ` +
      `${ms(r.hop.idle.p90Ms)}; ${r.hop.idle.steps} steps)`;
  lines.push(
    `Bare /grove/stage/1 round trip, coordinator → stage process that computes nothing, one ` +
      `${r.hop instanceof Error ? "" : `${r.hop.dim}-f32 `}hidden row: ${hop}.`,
    "decode tok/s and prompt_ms: the coordinator's timings (stage 0's node for a split), median " +
      "over runs. ms/token: the median time between streamed tokens over all runs, as the " +
      "client sees them (a fast model's tokens can arrive together: then it reads low). " +
      "P = (split ms/token − single ms/token) / (stages − 1): the coordinator holds stage 0, so " +
      "a k-stage step makes k − 1 round trips; target ≤ 1 ms on loopback (mesh-llm measured " +
      "~4.9 ms). TTFT: request to first streamed token through the client node. RSS after the " +
      "runs; peak = VmHWM.",
  );
  return lines.join("\n");
}
