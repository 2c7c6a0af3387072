/**
 * The mesh under load and faults on the simulated network (tests/support/netns.ts): a relay,
 * `serving` nodes serving stories260K and `clients` client nodes (no model), each process in its
 * own namespace; `inflight` streaming requests are kept in flight through the client nodes' /v1
 * for `seconds` while serving nodes are SIGKILLed (`kills`) and SIGSTOPped (`stops`), one after
 * another through the run. `deno task bench --only scale` runs it in full (10/50/200 for 120 s);
 * tests/scale-netns.test.ts runs it small and asserts on the result.
 *
 * What it counts, from the caller's side (the caller never re-sends: whatever the mesh does not
 * save is lost): sent, completed, lost (an error or a cut stream), and from the client nodes'
 * logs the requests they retried before the first token or failed over mid-stream. Load per
 * serving node is the mean of its reported load (running + queued, from the mesh status a client
 * node holds) sampled every second; spread is the largest distance from the mean of the nodes that
 * stayed up throughout. Memory is each process' RSS once warmed up (a third into the run and 10 s
 * after the last fault: `warmAtS`) and at the end, with its trace at each tenth of the run.
 */
import { createMemberStore, openRelayDatabase } from "../../relay/mod.ts";
import { type Key, newKey } from "../mesh-harness.ts";
import { createNet, type NetHost } from "../support/netns.ts";
import { type NetMesh, type NetNode, startNetMesh } from "../support/netns-mesh.ts";
import { memoryKiB } from "../support/process-memory.ts";
import { eventually } from "../support/poll.ts";

export interface ScaleOptions {
  serving: number;
  clients: number;
  seconds: number;
  inflight: number;
  /** Serving nodes SIGKILLed during the run (default 2). */
  kills?: number;
  /** Serving nodes SIGSTOPped during the run (default 1), left stopped to the end. */
  stops?: number;
  /** Tokens per answer (default 32). */
  maxTokens?: number;
  log?: (line: string) => void;
}

export interface NodeLoad {
  name: string;
  /** Mean requests running or queued on it, sampled every second. */
  meanLoad: number;
  /** What happened to it: "up", "killed at 30 s", "stopped at 66 s". */
  fate: string;
}

export interface ProcessMemory {
  name: string;
  warmMiB: number;
  endMiB: number;
  growth: number;
  /** RSS in MiB at each tenth of the run (from its start), to tell warm-up from a leak. */
  trace: number[];
}

export interface ScaleResult {
  options: Required<Omit<ScaleOptions, "log">>;
  sent: number;
  completed: number;
  /** Client node log lines saying a stream continued on another node. */
  failedOver: number;
  /** Client node log lines saying a request was sent again before its first token. */
  retried: number;
  lost: number;
  /** The first few lost requests' errors. */
  lostReasons: string[];
  load: NodeLoad[];
  /** Largest |load − mean| / mean over the serving nodes up throughout. */
  spread: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  memory: ProcessMemory[];
  /** The largest growth of any process still running at the end. */
  maxGrowth: number;
  setupS: number;
}

const MODEL = "stories260K";
/** The client node's line for each try after the first (mesh/remote-service.ts `route`). */
const FAILED_OVER = /failing over an answer of /;
const RETRIED = /retrying a request for /;

export async function runScale(opts: ScaleOptions): Promise<ScaleResult> {
  const o = { kills: 2, stops: 1, maxTokens: 32, ...opts };
  const log = opts.log ?? (() => {});
  const { log: _log, ...options } = o;
  if (o.kills + o.stops >= o.serving) {
    throw new Error(`${o.kills} kills and ${o.stops} stops leave no serving node of ${o.serving}`);
  }
  const started = performance.now();
  const net = await createNet();
  let mesh: NetMesh | undefined;
  try {
    mesh = await startNetMesh(net);
    const keys = (n: number) => Array.from({ length: n }, newKey);
    const [servingKeys, clientKeys] = [keys(o.serving), keys(o.clients)];
    addMembers(mesh.relayDir, [...servingKeys, ...clientKeys]);

    log(`scale: ${o.serving + o.clients} hosts...`);
    const servingHosts: NetHost[] = [];
    for (let i = 0; i < o.serving; i++) servingHosts.push(await net.publicHost(`s${i}`));
    const clientHosts: NetHost[] = [];
    for (let i = 0; i < o.clients; i++) clientHosts.push(await net.publicHost(`c${i}`));

    log(`scale: starting ${o.serving} serving nodes...`);
    const m = mesh;
    const serving = await inBatches(
      servingHosts,
      4,
      (h, i) => m.serve(h, `s${i}`, { key: servingKeys[i] }),
    );
    log(`scale: starting ${o.clients} client nodes...`);
    const clients = await inBatches(clientHosts, 6, (h, i) => m.consume(h, { key: clientKeys[i] }));
    log("scale: waiting until every client node lists every serving node...");
    await inBatches(clients, 10, (c) =>
      eventually(async () => {
        const res = await fetch(`${c.url}/api/availability`);
        const a = await res.json() as { serveTargets?: unknown[] };
        return (a.serveTargets?.length ?? 0) >= o.serving;
      }, { timeoutMs: 120_000, intervalMs: 500, what: "a client node never listed them all" }));
    const setupS = (performance.now() - started) / 1000;

    log(`scale: ${o.inflight} requests in flight for ${o.seconds} s...`);
    return {
      options,
      setupS,
      ...await load(o, m, serving, clients, log),
    };
  } finally {
    await (mesh?.close() ?? net.destroy());
  }
}

/** Members straight into the relay's database, as `grove members add` does, 60 at a time. */
function addMembers(relayDir: string, keys: Key[]): void {
  const db = openRelayDatabase(relayDir);
  try {
    const members = createMemberStore(db);
    for (const k of keys) members.add(k.pubkey, "member", Date.now() / 1000);
  } finally {
    db.close();
  }
}

async function inBatches<T, R>(
  items: T[],
  size: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    // allSettled: a second failure in a batch must not escape as an unhandled rejection, which
    // would end the process before the network is taken down.
    const batch = await Promise.allSettled(items.slice(i, i + size).map((x, j) => fn(x, i + j)));
    for (const r of batch) {
      if (r.status === "rejected") throw r.reason;
      out.push(r.value);
    }
  }
  return out;
}

type Outcome = { ok: true; ttftMs: number } | { ok: false; reason: string; ttftMs?: number };

/** One streamed chat answer through a client node; never re-sent. */
async function chat(url: string, maxTokens: number, n: number): Promise<Outcome> {
  const t0 = performance.now();
  let ttftMs: number | undefined;
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: `Once upon a time, story ${n}` }],
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
      }),
    });
    if (!res.ok) return { ok: false, reason: `HTTP ${res.status}: ${await res.text()}` };
    let buf = "";
    let finished = false;
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const ev = JSON.parse(data);
        if (ev.error) {
          return { ok: false, reason: ev.error.message ?? JSON.stringify(ev.error), ttftMs };
        }
        const choice = ev.choices?.[0];
        if (ttftMs === undefined && choice?.delta?.content) ttftMs = performance.now() - t0;
        if (choice?.finish_reason) finished = true;
      }
    }
    if (!finished) return { ok: false, reason: "the stream ended without a finish_reason", ttftMs };
    return { ok: true, ttftMs: ttftMs ?? performance.now() - t0 };
  } catch (err) {
    return { ok: false, reason: (err as Error).message, ttftMs };
  }
}

/** Each serving node's reported load (running + queued) by name, as the mesh status carries it. */
async function reportedLoads(url: string): Promise<Map<string, number>> {
  try {
    const res = await fetch(`${url}/api/availability`, { signal: AbortSignal.timeout(2000) });
    const a = await res.json() as {
      serveTargets?: { nodeName: string; load: { active: number; queued: number } }[];
    };
    return new Map((a.serveTargets ?? []).map((t) => [t.nodeName, t.load.active + t.load.queued]));
  } catch {
    return new Map();
  }
}

async function load(
  o: Required<Omit<ScaleOptions, "log">>,
  mesh: NetMesh,
  serving: NetNode[],
  clients: NetNode[],
  log: (line: string) => void,
): Promise<Omit<ScaleResult, "options" | "setupS">> {
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;
  const elapsedS = () => Math.round((performance.now() - t0) / 1000);
  const fates = serving.map(() => "up");
  const ttfts: number[] = [];
  const lostReasons: string[] = [];
  let sent = 0, completed = 0, lost = 0;

  // Faults spread over the middle of the run: the first at 25 %, the last by 60 %.
  const faults = [
    ...Array.from({ length: o.kills }, () => "SIGKILL" as const),
    ...Array.from({ length: o.stops }, () => "SIGSTOP" as const),
  ];
  const faultTimers = faults.map((signal, i) => {
    const at = faultAtS(o.seconds, i, faults.length);
    return setTimeout(() => {
      serving[i].kill(signal);
      fates[i] = `${signal === "SIGKILL" ? "killed" : "stopped"} at ${elapsedS()} s`;
      log(`scale: ${signal} serving node s${i} at ${elapsedS()} s`);
    }, at * 1000);
  });

  const samples = serving.map(() => [] as number[]);
  // Serving nodes count mesh requests in their serve reports, not in their own /metrics.
  const sampler = setInterval(() => {
    void reportedLoads(clients[0].url).then((loads) => {
      serving.forEach((_, i) => {
        const n = loads.get(`s${i}`);
        if (n !== undefined && fates[i] === "up") samples[i].push(n);
      });
    });
  }, 1000);

  const procs = [
    { name: "relay", pid: mesh.relay().child.pid, up: () => true },
    ...serving.map((s, i) => ({ name: `s${i}`, pid: s.child.pid, up: () => fates[i] === "up" })),
    ...clients.map((c, i) => ({ name: `c${i}`, pid: c.child.pid, up: () => true })),
  ];
  const traces = new Map<string, number[]>(procs.map((p) => [p.name, []]));
  const traceTimer = setInterval(() => {
    for (const p of procs) {
      if (!p.up()) continue;
      try {
        traces.get(p.name)!.push(memoryKiB(p.pid) / 1024);
      } catch { /* gone */ }
    }
  }, o.seconds * 100);
  let warm: Map<string, number> | undefined;
  const warmTimer = setTimeout(() => {
    warm = new Map(procs.filter((p) => p.up()).map((p) => [p.name, memoryKiB(p.pid)]));
  }, warmAtS(o.seconds, faults.length) * 1000);

  const progress = setInterval(
    () => log(`scale: ${elapsedS()} s, ${sent} sent, ${completed} completed, ${lost} lost`),
    10_000,
  );
  try {
    await Promise.all(Array.from({ length: o.inflight }, async (_, w) => {
      const client = clients[w % clients.length];
      while (performance.now() < deadline) {
        const n = sent++;
        const r = await chat(client.url, o.maxTokens, n);
        if (r.ok) {
          completed++;
          ttfts.push(r.ttftMs);
        } else {
          lost++;
          if (lostReasons.length < 5) lostReasons.push(`${elapsedS()} s: ${r.reason}`);
        }
      }
    }));
  } finally {
    for (const t of faultTimers) clearTimeout(t);
    clearTimeout(warmTimer);
    clearInterval(traceTimer);
    clearInterval(sampler);
    clearInterval(progress);
  }

  const memory = procs.filter((p) => p.up() && warm?.has(p.name)).map((p) => {
    const warmKiB = warm!.get(p.name)!;
    const endKiB = memoryKiB(p.pid);
    return {
      name: p.name,
      warmMiB: warmKiB / 1024,
      endMiB: endKiB / 1024,
      growth: endKiB / warmKiB - 1,
      trace: traces.get(p.name)!,
    };
  });
  const logs = clients.map((c) => c.stderr() + c.stdout()).join("\n").split("\n");
  const loads = serving.map((_, i) => ({
    name: `s${i}`,
    meanLoad: mean(samples[i]),
    fate: fates[i],
  }));
  const upLoads = loads.filter((l) => l.fate === "up").map((l) => l.meanLoad);
  const meanUp = mean(upLoads);
  const sorted = ttfts.sort((a, b) => a - b);
  return {
    sent,
    completed,
    failedOver: logs.filter((l) => FAILED_OVER.test(l)).length,
    retried: logs.filter((l) => RETRIED.test(l)).length,
    lost,
    lostReasons,
    load: loads,
    spread: meanUp > 0 ? Math.max(...upLoads.map((l) => Math.abs(l - meanUp))) / meanUp : 0,
    ttftP50Ms: quantile(sorted, 0.5),
    ttftP99Ms: quantile(sorted, 0.99),
    memory,
    maxGrowth: Math.max(0, ...memory.map((m) => m.growth)),
  };
}

/** When a fault is: the first at 25 % of the run, the last by 60 %. */
function faultAtS(seconds: number, i: number, count: number): number {
  return seconds * (0.25 + (count > 1 ? 0.35 * i / (count - 1) : 0));
}

/**
 * When memory counts as warmed up: a third into the run, and not before 10 s after the last
 * fault, for a kill moves its node's requests onto the others and each then settles at a higher
 * level for the larger load (a 30 s run with one of 3 nodes killed at 7.5 s: 160 → 200 MiB on the
 * two left, then flat); at most two thirds in, so growth is still measured over a third.
 */
function warmAtS(seconds: number, faults: number): number {
  const settled = faults > 0 ? faultAtS(seconds, faults - 1, faults) + 10 : 0;
  return Math.min(seconds * 2 / 3, Math.max(seconds / 3, settled));
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** The result as Markdown: requests, load per serving node, time to first token, memory. */
export function scaleTable(r: ScaleResult): string {
  const o = r.options;
  const up = r.load.filter((l) => l.fate === "up");
  const growths = [...r.memory].sort((a, b) => b.growth - a.growth);
  const byKind = (prefix: string) => r.memory.filter((m) => m.name.startsWith(prefix));
  const range = (ms: ProcessMemory[]) =>
    ms.length === 0
      ? "—"
      : `${Math.min(...ms.map((m) => m.endMiB)).toFixed(0)}–${
        Math.max(...ms.map((m) => m.endMiB)).toFixed(0)
      } MiB`;
  const lines = [
    `Scale: ${o.serving} serving nodes (${MODEL}), ${o.clients} client nodes, ${o.inflight} ` +
    `requests in flight for ${o.seconds} s (${o.maxTokens} tokens each), ${o.kills} SIGKILLed ` +
    `and ${o.stops} SIGSTOPped; each process in its own network namespace (setup ${
      r.setupS.toFixed(0)
    } s).`,
    "",
    "| requests | count |",
    "| --- | ---: |",
    `| sent | ${r.sent} |`,
    `| completed | ${r.completed} |`,
    `| failed over mid-stream (client node logs) | ${r.failedOver} |`,
    `| retried before the first token (client node logs) | ${r.retried} |`,
    `| lost | ${r.lost} |`,
    "",
    "| serving node | mean load (running + queued) | vs mean of nodes up | fate |",
    "| --- | ---: | ---: | --- |",
    ...r.load.map((l) => {
      const m = mean(up.map((u) => u.meanLoad));
      const vs = l.fate === "up" && m > 0 ? pct(l.meanLoad / m - 1) : "—";
      return `| ${l.name} | ${l.meanLoad.toFixed(2)} | ${vs} | ${l.fate} |`;
    }),
    "",
    `Spread of the nodes up throughout: ${pct(r.spread)} (bound 20 %). Time to first token: ` +
    `p50 ${r.ttftP50Ms.toFixed(0)} ms, p99 ${r.ttftP99Ms.toFixed(0)} ms.`,
    "",
    `| memory (RSS) | warm (at ${
      warmAtS(o.seconds, o.kills + o.stops).toFixed(0)
    } s) | end | growth | MiB at each tenth of the run |`,
    "| --- | ---: | ---: | ---: | --- |",
    ...growths.slice(0, 5).map((m) =>
      `| ${m.name} | ${m.warmMiB.toFixed(0)} MiB | ${m.endMiB.toFixed(0)} MiB | ${
        pct(m.growth)
      } | ${m.trace.map((x) => x.toFixed(0)).join(" ")} |`
    ),
    "",
    `Largest growth ${pct(r.maxGrowth)} over ${r.memory.length} processes still up (bound 20 %); ` +
    `at the end the relay ${range(byKind("relay"))}, serving nodes ${range(byKind("s"))}, ` +
    `client nodes ${range(byKind("c"))}.`,
  ];
  if (r.lostReasons.length > 0) {
    lines.push("", "First lost requests:", ...r.lostReasons.map((x) => `- ${x}`));
  }
  return lines.join("\n");
}
