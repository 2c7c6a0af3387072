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
    // The runner-up from the other family: Grove's thread counts are not rivals of each other.
    const win = ok[0];
    const family = (name: string) => name.startsWith("Grove");
    const next = ok.find((c) => family(c.name) !== family(win.name));
    const by = next ? ` (${(win.tps / next.tps).toFixed(1)}× ${next.name})` : "";
    parts.push(`${model}: ${win.name}${by}`);
  }
  return `Fastest CPU path for users (decode, Grove engine vs wllama): ${parts.join("; ")}`;
}

/** Row labels the ratio lines look up (tests/bench.ts names its jobs with them). */
export const GROVE_1 = "Grove CPU, 1 thread";
export const GROVE_2 = "Grove CPU, 2 threads";
export const GROVE_WASM_1 = "Grove CPU WASM, 1 thread";
export const LLAMA_1 = "llama.cpp native, 1 thread";
export const LLAMA_2 = "llama.cpp native, 2 threads";
export const GROVE_WEBGPU = "Grove WebGPU";
export const LLAMA_VULKAN = "llama.cpp Vulkan (llvmpipe)";

/** Issue 16's targets: Grove over llama.cpp in the same run. */
export const TARGETS = {
  prefillNative: 0.6, // native kernels through FFI, vs llama.cpp native at the same threads
  prefillWasm: 0.3, // WASM SIMD kernels, likewise
  decode: 0.8,
  webgpuPrefill: 10, // Grove WebGPU over llama.cpp's Vulkan build on the same adapter
  webgpuDecode: 5,
} as const;

type Phase = "prefill" | "decode";

function measured(rows: Row[], model: string, name: string): Measurement | undefined {
  const r = rows.find((x) => x.model === model && x.name === name)?.result;
  return r && !("error" in r) ? r : undefined;
}

const speed = (m: Measurement, phase: Phase) =>
  phase === "prefill" ? m.prefillTokensPerSecond : m.decodeTokensPerSecond;

/** `a / b` with its verdict against `target`: 2 decimals for a share, 1 and × for a multiple. */
function ratio(a: number, b: number, target: number, digits: number): string {
  const x = a / b;
  return `${x.toFixed(digits)}${digits === 2 ? "" : "×"} ${x >= target ? "(meets)" : "(below)"}`;
}

/**
 * Per model, Grove CPU's prefill or decode over llama.cpp native at the same thread count (1 and
 * 2 threads, and the WASM kernels at 1). A row's target follows the kernels its engine name says
 * it ran: where the native library is not built for these sources, the "native" rows run WASM.
 */
export function cpuRatios(rows: Row[], phase: Phase): string {
  const pairs = [[GROVE_1, LLAMA_1, "1 thread"], [GROVE_2, LLAMA_2, "2 threads"], [
    GROVE_WASM_1,
    LLAMA_1,
    "WASM 1 thread",
  ]] as const;
  const parts: string[] = [];
  for (const model of new Set(rows.map((r) => r.model))) {
    const got: string[] = [];
    for (const [grove, llama, what] of pairs) {
      const g = measured(rows, model, grove), l = measured(rows, model, llama);
      if (!g || !l) continue;
      const native = g.engine.includes("native kernels");
      const target = phase === "decode"
        ? TARGETS.decode
        : native
        ? TARGETS.prefillNative
        : TARGETS.prefillWasm;
      got.push(`${what} ${ratio(speed(g, phase), speed(l, phase), target, 2)}`);
    }
    // llama.cpp's threads spin at each barrier: with a core taken by another process its 2
    // threads fall below its 1, and a 2-thread ratio says nothing about Grove.
    const l1 = measured(rows, model, LLAMA_1), l2 = measured(rows, model, LLAMA_2);
    if (l1 && l2 && speed(l2, phase) < speed(l1, phase)) {
      got.push("llama.cpp slower at 2 threads than at 1 (a core was busy): 2-thread ratio void");
    }
    if (got.length) parts.push(`${model}: ${got.join(", ")}`);
  }
  const targets = phase === "decode"
    ? `target ≥ ${TARGETS.decode}`
    : `target ≥ ${TARGETS.prefillNative} native kernels, ≥ ${TARGETS.prefillWasm} WASM`;
  return `${phase === "prefill" ? "Prefill" : "Decode"}, Grove CPU / llama.cpp native at the ` +
    `same thread count (${targets}): ${parts.join("; ") || "not measured"}`;
}

/** Per model, Grove WebGPU over llama.cpp's Vulkan build on the same adapter. */
export function webGpuRatios(rows: Row[]): string {
  const parts: string[] = [];
  for (const model of new Set(rows.map((r) => r.model))) {
    const g = measured(rows, model, GROVE_WEBGPU), v = measured(rows, model, LLAMA_VULKAN);
    if (!g || !v) continue;
    parts.push(
      `${model}: prefill ${
        ratio(speed(g, "prefill"), speed(v, "prefill"), TARGETS.webgpuPrefill, 1)
      }` +
        `, decode ${ratio(speed(g, "decode"), speed(v, "decode"), TARGETS.webgpuDecode, 1)}`,
    );
  }
  return `Grove WebGPU / llama.cpp Vulkan on the same adapter (targets ≥ ` +
    `${TARGETS.webgpuPrefill}× prefill, ≥ ${TARGETS.webgpuDecode}× decode): ` +
    `${parts.join("; ") || "not measured"}`;
}

/** The inference table's ratio lines, issue 16's targets beside each. */
export function ratioLines(rows: Row[]): string {
  return [cpuRatios(rows, "prefill"), cpuRatios(rows, "decode"), webGpuRatios(rows)].join("\n");
}
