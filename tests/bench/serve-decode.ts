/**
 * Decode as a WebGPU serving node runs it: requests through the node's local service (scheduler,
 * batched WebGPU engine), with the engine's decodeAhead rounds and without them (plain steps:
 * one readback a token). In Deno every readback waits for the device and then 10 ms more
 * (ext/webgpu/buffer.rs), so without rounds a fast model decodes at most ~1 / (step + 10 ms).
 * Greedy requests, or seeded ones at a temperature at llama.cpp's other defaults (top-k 40, top-p
 * 0.95, min-p 0.05), with or without a repeat penalty, whose tokens the device picks as their
 * samplers would. The two alternate in one process on one loaded model; medians of `runs`.
 *
 * `deno run -A tests/bench/serve-decode.ts <model.gguf> <label> <tokens> <runs> <streams>
 * [temperature] [repeat penalty]` prints one JSON line; `serveDecodeSection` runs a child per row
 * and prints the table.
 */
import { createBatchedWebGpuEngine } from "../../inference/webgpu/batch-forward.ts";
import { createLocalService, type InferRequest } from "../../mesh/mod.ts";
import { median } from "./stats.ts";
import { runChildJson } from "./child.ts";

export interface ServeDecodeResult {
  label: string;
  adapter: string;
  tokens: number;
  streams: number;
  temperature: number;
  repeatPenalty: number;
  plain: number; // aggregate decode tok/s, one readback a step
  ahead: number; // with decodeAhead rounds
}

/** Aggregate decode tok/s of `streams` requests of `tokens` tokens at once. */
async function decodeRate(
  service: ReturnType<typeof createLocalService>,
  tokens: number,
  streams: number,
  temperature: number,
  repeatPenalty: number,
): Promise<number> {
  let first = Infinity, last = 0, decoded = 0;
  await Promise.all(Array.from({ length: streams }, async (_, s) => {
    const req: InferRequest = {
      model: "m",
      prompt: `Once upon a time, ${"a ".repeat(s)}`,
      params: { max_tokens: tokens, temperature, repeat_penalty: repeatPenalty, seed: 1 + s },
    };
    let n = 0;
    for await (const e of service.infer(req, new AbortController().signal)) {
      if (e.type === "error") throw new Error(`${e.code}: ${e.message}`);
      if (e.type !== "token") continue;
      const now = performance.now();
      if (n++ === 0) first = Math.min(first, now);
      else decoded++;
      last = Math.max(last, now);
    }
  }));
  return decoded / ((last - first) / 1000);
}

export async function measureServeDecode(
  path: string,
  label: string,
  tokens: number,
  runs: number,
  streams: number,
  temperature = 0,
  repeatPenalty = 1,
): Promise<ServeDecodeResult> {
  const { engine, batch } = await createBatchedWebGpuEngine({
    path,
    ctxSize: 64 + tokens,
    maxSlots: streams,
  });
  try {
    if (!batch.decodeAhead) throw new Error(`${label}: this model's batch cannot run ahead`);
    // Two schedulers on one engine: neither keeps a finished request's slot for reuse.
    const ahead = createLocalService({ engine, batch, id: "m", promptReuse: false });
    const plain = createLocalService({
      engine,
      batch: { ...batch, decodeAhead: undefined },
      id: "m",
      promptReuse: false,
    });
    const rate = (service: typeof plain, n: number) =>
      decodeRate(service, n, streams, temperature, repeatPenalty);
    await rate(plain, 4); // warm-up: kernels built, steps timed
    await rate(ahead, 4);
    const rates = { plain: [] as number[], ahead: [] as number[] };
    for (let i = 0; i < runs; i++) {
      rates.plain.push(await rate(plain, tokens));
      rates.ahead.push(await rate(ahead, tokens));
    }
    return {
      label,
      adapter: engine.info.adapter,
      tokens,
      streams,
      temperature,
      repeatPenalty,
      plain: median(rates.plain),
      ahead: median(rates.ahead),
    };
  } finally {
    engine.close();
  }
}

/** The section: one child process per row (a WebGPU device each). */
export async function serveDecodeSection(
  rows: {
    path: string;
    label: string;
    tokens: number;
    runs: number;
    streams: number;
    temperature?: number;
    repeatPenalty?: number;
  }[],
): Promise<string> {
  const lines = [
    "Decode through a WebGPU serving node's scheduler: plain steps (one readback a token) vs " +
    "decodeAhead rounds (one readback per ~60 ms of steps, the engine feeding itself its argmax, " +
    "or its pick for a request that samples or has penalties); aggregate decode tok/s, medians",
    "",
    "| model | adapter | streams | temperature | repeat penalty | tokens × runs | plain steps tok/s " +
    "| rounds tok/s | gain |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const temperature = r.temperature ?? 0, repeatPenalty = r.repeatPenalty ?? 1;
    const args = [
      ...[r.path, r.label, String(r.tokens), String(r.runs), String(r.streams)],
      ...[String(temperature), String(repeatPenalty)],
    ];
    try {
      const out = await runChildJson<ServeDecodeResult>(new URL(import.meta.url).pathname, args);
      lines.push(
        `| ${r.label} | ${out.adapter} | ${r.streams} | ${temperature} | ${repeatPenalty} | ` +
          `${r.tokens} × ${r.runs} | ` +
          `${out.plain.toFixed(1)} | ${out.ahead.toFixed(1)} | ${
            (out.ahead / out.plain).toFixed(2)
          }× |`,
      );
    } catch (e) {
      const why = (e as Error).message.split("\n")[0].replace(/\|/g, "/").slice(0, 200);
      lines.push(`| ${r.label} | FAILED: ${why} | | | | | | | |`);
    }
  }
  lines.push(
    "",
    "Each readback in Deno waits for the device, then 10 ms more; a round of decode steps pays " +
      "that once. A step that takes longer than a round (the 1.1B on llvmpipe) runs alone, as " +
      "before. A request at a temperature (seeded, the same answer either way; top-k 40, top-p " +
      "0.95, min-p 0.05) has its tokens drawn on the device as its sampler draws them, and the " +
      "host checks each pick against the logits read back. A repeat penalty (Ollama's default " +
      "1.1, over the last 64 tokens) is applied there too.",
  );
  return lines.join("\n");
}

if (import.meta.main) {
  const [path, label, tokens, runs, streams, temperature, repeatPenalty] = Deno.args;
  const r = await measureServeDecode(
    path,
    label,
    Number(tokens),
    Number(runs),
    Number(streams),
    Number(temperature ?? 0),
    Number(repeatPenalty ?? 1),
  );
  console.log(JSON.stringify(r));
  Deno.exit(0);
}
