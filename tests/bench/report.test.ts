import assert from "node:assert/strict";
import {
  cpuRatios,
  GROVE_1,
  GROVE_2,
  GROVE_WASM_1,
  GROVE_WEBGPU,
  LLAMA_1,
  LLAMA_2,
  LLAMA_VULKAN,
  type Row,
  verdict,
  webGpuRatios,
} from "./report.ts";

function row(name: string, engine: string, prefill: number, decode: number, model = "m"): Row {
  const result = {
    engine,
    promptTokens: 128,
    prefillTokensPerSecond: prefill,
    decodeTokens: 64,
    decodeTokensPerSecond: decode,
    loadMs: 1,
  };
  const candidate = name.startsWith("Grove CPU") || name === "wllama";
  return { model, name, streamedBytes: 1e6, result, candidate };
}

const NATIVE = "Grove CPU (CPU, native kernels (built for this CPU), 1 of 2 cores)";
const WASM = "Grove CPU (CPU, WASM SIMD kernels, 1 of 2 cores)";

Deno.test("cpuRatios sets Grove beside llama.cpp at the same thread count", () => {
  const rows = [
    row(GROVE_1, NATIVE, 30, 20),
    row(GROVE_2, WASM, 40, 30), // the native library missing: WASM ran under the native label
    row(GROVE_WASM_1, WASM, 15, 10),
    row(LLAMA_1, "llama.cpp native CPU, 1 thread", 50, 25),
    row(LLAMA_2, "llama.cpp native CPU, 2 threads", 100, 40),
  ];
  const prefill = cpuRatios(rows, "prefill");
  // 30/50 meets the native kernels' 0.60; 40/100 is judged by WASM's 0.30; 15/50 by WASM's too.
  assert.match(prefill, /m: 1 thread 0\.60 \(meets\), 2 threads 0\.40 \(meets\)/);
  assert.match(prefill, /WASM 1 thread 0\.30 \(meets\)/);
  const decode = cpuRatios(rows, "decode");
  assert.match(decode, /1 thread 0\.80 \(meets\), 2 threads 0\.75 \(below\)/);
  assert.match(decode, /WASM 1 thread 0\.40 \(below\)/);
});

Deno.test("cpuRatios flags a run where llama.cpp's 2 threads fell below its 1", () => {
  const rows = [
    row(GROVE_2, NATIVE, 40, 30),
    row(LLAMA_1, "llama.cpp native CPU, 1 thread", 50, 25),
    row(LLAMA_2, "llama.cpp native CPU, 2 threads", 100, 5),
  ];
  assert.match(cpuRatios(rows, "decode"), /2 threads 6\.00 \(meets\), llama\.cpp slower .* void/);
  assert.doesNotMatch(cpuRatios(rows, "prefill"), /void/);
});

Deno.test("cpuRatios leaves out a pair where either side failed", () => {
  const rows: Row[] = [
    row(GROVE_1, NATIVE, 30, 20),
    { ...row(LLAMA_1, "", 0, 0), result: { engine: LLAMA_1, error: "killed" } },
  ];
  assert.match(cpuRatios(rows, "decode"), /: not measured$/);
});

Deno.test("webGpuRatios divides by the Vulkan row against 10× prefill and 5× decode", () => {
  const rows = [row(GROVE_WEBGPU, "Grove WebGPU", 22, 4.9), row(LLAMA_VULKAN, "Vulkan", 2, 1)];
  assert.match(webGpuRatios(rows), /m: prefill 11\.0× \(meets\), decode 4\.9× \(below\)/);
});

Deno.test("verdict names the runner-up of the other family, not another Grove row", () => {
  const rows = [
    row(GROVE_2, NATIVE, 1, 30),
    row(GROVE_1, NATIVE, 1, 20),
    row("wllama", "wllama", 1, 10),
  ];
  assert.match(verdict(rows), /m: Grove CPU, 2 threads \(3\.0× wllama\)/);
});
