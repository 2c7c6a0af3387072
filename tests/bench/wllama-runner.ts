/**
 * Runs wllama (llama.cpp compiled to WebAssembly) inside Deno on one thread and
 * reports llama.cpp's own prefill/decode timings.
 *
 * wllama is written for browsers; these shims make it run under Deno:
 * - `globalThis.location`: wllama resolves the wasm path against it.
 * - a `Worker` wrapper that hides `process` inside the worker, or emscripten
 *   takes its Node path (require, fs) and fails.
 * - the wasm as a `blob:` URL: emscripten in a worker fetches it, and Deno's
 *   worker has no XMLHttpRequest for `file://`.
 * - dummy cache/model managers: the defaults reach for browser storage.
 * - `n_gpu_layers: 0`: otherwise it offloads to Deno's WebGPU (llvmpipe here).
 */
import { Wllama } from "@wllama/wllama";
import { fileURLToPath } from "node:url";

export interface WllamaRunOptions {
  prompt: string; // text: wllama's completion API tokenizes it itself
  decodeTokens: number;
  ctxSize: number;
}

export interface WllamaRunResult {
  version: string;
  loadMs: number;
  promptTokens: number;
  prefillTokensPerSecond: number;
  decodeTokens: number;
  decodeTokensPerSecond: number;
}

const WASM_PATH = fileURLToPath(
  new URL("../../node_modules/@wllama/wllama/esm/wasm/wllama.wasm", import.meta.url),
);

// Runs first inside the worker: emscripten checks `globalThis.process?.versions?.node`.
const WORKER_PRELUDE = "try { Object.defineProperty(globalThis, 'process', " +
  "{ value: undefined, configurable: true, writable: true }); } catch (_) {}\n";

let shimsInstalled = false;

function installShims(): void {
  if (shimsInstalled) return;
  shimsInstalled = true;
  const g = globalThis as unknown as Record<string, unknown>;
  g.location ??= { href: "http://127.0.0.1/" };
  const BaseWorker = globalThis.Worker;
  // wllama builds its worker from a blob: URL. Wrap it in a module that first hides `process`.
  class ShimmedWorker extends BaseWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      const wrapper = `${WORKER_PRELUDE}await import(${JSON.stringify(String(url))});\n`;
      const wrapped = URL.createObjectURL(new Blob([wrapper], { type: "text/javascript" }));
      super(wrapped, { ...options, type: "module" });
    }
  }
  g.Worker = ShimmedWorker;
}

/** Loads `path` into wllama (one thread, CPU only), runs one greedy completion, then exits it. */
export async function runWllama(path: string, o: WllamaRunOptions): Promise<WllamaRunResult> {
  installShims();
  const wasm = await Deno.readFile(WASM_PATH);
  const wasmUrl = URL.createObjectURL(new Blob([wasm], { type: "application/wasm" }));
  const quiet = () => {};
  const wllama = new Wllama({ default: wasmUrl }, {
    suppressNativeLog: true,
    logger: { debug: quiet, log: quiet, warn: quiet, error: console.error },
    // Unused (the model comes as a Blob), but the defaults touch browser storage.
    cacheManager: {} as never,
    modelManager: {} as never,
  });
  try {
    const t0 = performance.now();
    const bytes = await Deno.readFile(path);
    await wllama.loadModel([new Blob([bytes])], {
      n_gpu_layers: 0,
      n_threads: 1,
      n_ctx: o.ctxSize,
      n_batch: 512,
      n_parallel: 1,
      warmup: false,
    });
    const loadMs = performance.now() - t0;
    const res = await wllama.createCompletion({
      prompt: o.prompt,
      stream: false,
      max_tokens: o.decodeTokens,
      temperature: 0,
      ignore_eos: true,
    });
    const t = res.timings;
    if (!t) throw new Error("wllama returned no timings");
    return {
      version: `wllama 3.13.0 (WASM, llama.cpp ${Wllama.getLibllamaVersion()})`,
      loadMs,
      promptTokens: t.prompt_n,
      prefillTokensPerSecond: t.prompt_per_second,
      decodeTokens: t.predicted_n,
      // llama-server counts the first sampled token in the prompt pass, so predicted_n may be
      // one below max_tokens; its rate covers only the decode evaluations.
      decodeTokensPerSecond: t.predicted_per_second,
    };
  } finally {
    await wllama.exit().catch(() => {});
    URL.revokeObjectURL(wasmUrl);
  }
}
