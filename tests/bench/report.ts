/** Turns measurements into the bench's markdown table and its verdict line. */
import type { Measurement } from "./types.ts";

export interface Row {
  model: string;
  name: string; // short engine name for the verdict
  streamedBytes: number; // weight bytes read per decoded token
  result: Measurement | { engine: string; error: string };
  candidate: boolean; // could serve as Grove's CPU path (Grove itself, wllama)
}

const fmt = (x: number) => x >= 100 ? x.toFixed(0) : x.toPrecision(3);

export function markdownTable(rows: Row[]): string {
  const lines = [
    "| model | engine | prefill tok/s | decode tok/s | decode GB/s |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const m = r.result;
    if ("error" in m) {
      lines.push(`| ${r.model} | ${m.engine} | failed: ${m.error} | | |`);
      continue;
    }
    const gbps = (r.streamedBytes * m.decodeTokensPerSecond) / 1e9;
    lines.push(
      `| ${r.model} | ${m.engine} | ${fmt(m.prefillTokensPerSecond)} (${m.promptTokens} tok) | ` +
        `${fmt(m.decodeTokensPerSecond)} (${m.decodeTokens} tok) | ${fmt(gbps)} |`,
    );
  }
  return lines.join("\n");
}

/** Per model, the faster decode among the candidates for Grove's CPU path. */
export function verdict(rows: Row[]): string {
  const models = [...new Set(rows.map((r) => r.model))];
  const parts: string[] = [];
  for (const model of models) {
    const ok = rows.filter((r) => r.model === model && r.candidate && !("error" in r.result))
      .map((r) => ({ name: r.name, tps: (r.result as Measurement).decodeTokensPerSecond }))
      .sort((a, b) => b.tps - a.tps);
    if (ok.length === 0) {
      parts.push(`${model}: no candidate ran`);
      continue;
    }
    const [win, next] = ok;
    const by = next ? ` (${(win.tps / next.tps).toFixed(1)}× ${next.name})` : "";
    parts.push(`${model}: ${win.name}${by}`);
  }
  return `Fastest CPU path for users (decode, Grove engine vs wllama): ${parts.join("; ")}`;
}

/**
 * Per model, Grove CPU's decode speed over llama.cpp's at the same thread count (Grove's CPU
 * kernels run on two threads where there are two cores): a MoE model should keep the dense
 * models' ratio when only its routed experts are read.
 */
export function decodeRatios(rows: Row[]): string {
  const tps = (model: string, name: string) => {
    const r = rows.find((x) => x.model === model && x.name === name)?.result;
    return r && !("error" in r) ? r.decodeTokensPerSecond : undefined;
  };
  const parts: string[] = [];
  for (const model of new Set(rows.map((r) => r.model))) {
    const grove = tps(model, "Grove CPU"), llama = tps(model, "llama.cpp native, 2 threads");
    if (grove !== undefined && llama !== undefined) {
      parts.push(`${model}: ${(grove / llama).toFixed(2)}`);
    }
  }
  return `Decode, Grove CPU / llama.cpp native at 2 threads: ${parts.join("; ") || "not measured"}`;
}
