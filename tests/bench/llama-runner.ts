/**
 * Times llama.cpp itself through node-llama-cpp 3.21.1's prebuilt builds: the CPU build (the
 * yardstick for Grove's CPU path) or the Vulkan build (@node-llama-cpp/linux-x64-vulkan) on the
 * adapter Grove's WebGPU engine gets — here llvmpipe, which ggml lists only with
 * GGML_VK_VISIBLE_DEVICES=0. Default context settings (F16 KV cache), as a llama.cpp user
 * would run it.
 */
import {
  getLlama,
  type Llama,
  type LlamaContextSequence,
  LlamaLogLevel,
  type Token,
} from "node-llama-cpp";
import type { Measurement, RunPlan } from "./types.ts";

type Input = Parameters<LlamaContextSequence["controlledEvaluate"]>[0];

const ASK = { generateNext: { token: true, options: { temperature: 0 } } } as const;

/** Evaluates `tokens` on `sequence` and returns the greedy token after the last one. */
export async function nextToken(sequence: LlamaContextSequence, tokens: number[]): Promise<Token> {
  const t = tokens as Token[];
  return await step(sequence, [...t.slice(0, -1), [t[t.length - 1], ASK]]);
}

async function step(sequence: LlamaContextSequence, input: Input): Promise<Token> {
  const results = await sequence.controlledEvaluate(input);
  const next = results[input.length - 1]?.next?.token;
  if (next == null) throw new Error("llama.cpp returned no token");
  return next;
}

/**
 * llama.cpp's prebuilt CPU (or Vulkan) build at `threads` threads. build "never": no network
 * here, and a source build would change what is measured.
 */
export async function openLlama(
  threads: number,
  backend: "cpu" | "vulkan" = "cpu",
): Promise<Llama> {
  return await getLlama({
    gpu: backend === "vulkan" ? "vulkan" : false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    maxThreads: threads,
  });
}

export async function runLlamaCpp(
  path: string,
  plan: RunPlan,
  threads: number,
  backend: "cpu" | "vulkan" = "cpu",
): Promise<Measurement> {
  const vulkan = backend === "vulkan";
  // Read by ggml's Vulkan backend when it enumerates devices, i.e. at getLlama below.
  if (vulkan) {
    Deno.env.set("GGML_VK_VISIBLE_DEVICES", Deno.env.get("GGML_VK_VISIBLE_DEVICES") ?? "0");
  }
  const llama = await openLlama(threads, backend);
  try {
    const devices = vulkan ? await llama.getGpuDeviceNames() : [];
    const t0 = performance.now();
    // Vulkan: all layers offloaded to the device.
    const model = await llama.loadModel({ modelPath: path, gpuLayers: vulkan ? "max" : 0 });
    const context = await model.createContext({
      contextSize: plan.promptTokens.length + plan.decodeTokens + 8,
      batchSize: plan.promptTokens.length,
      sequences: 1,
      threads,
    });
    const loadMs = performance.now() - t0;
    const sequence = context.getSequence();
    const prompt = plan.promptTokens as Token[];
    // Warm-up, as llama-bench does by default and as Grove's runners do: the same prompt and a
    // decode step, then forgotten.
    await step(sequence, [[await nextToken(sequence, prompt), ASK]]);
    await sequence.clearHistory();
    const t1 = performance.now();
    let token = await nextToken(sequence, prompt);
    const t2 = performance.now();
    for (let i = 0; i < plan.decodeTokens; i++) token = await step(sequence, [[token, ASK]]);
    const t3 = performance.now();
    await context.dispose();
    await model.dispose();
    return {
      engine: vulkan
        ? `llama.cpp Vulkan (${devices.join(", ") || "no device"})`
        : `llama.cpp native CPU, ${threads} thread${threads > 1 ? "s" : ""}`,
      promptTokens: prompt.length,
      prefillTokensPerSecond: prompt.length / ((t2 - t1) / 1000),
      decodeTokens: plan.decodeTokens,
      decodeTokensPerSecond: plan.decodeTokens / ((t3 - t2) / 1000),
      loadMs,
    };
  } finally {
    await llama.dispose();
  }
}
