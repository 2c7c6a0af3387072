/**
 * Prompt reuse's gain (inference/prefix-cache.ts): time to first token of an agent's second turn
 * after a ~2,000-token first one, on a serving node's local service (chat template, tokenizer,
 * scheduler, CPU batch engine): the first turn (cold), the second turn as another member sends it
 * (the same prompt, nothing of it cached for that member: a cold read of the whole conversation)
 * and the second turn as the same member sends it (its cached prefix taken: only the new tokens
 * read). Each conversation is new text, so nothing carries over between the runs; medians.
 *
 * Beside it llama.cpp native (llama-reuse.ts) reads the same conversations' token lists on one
 * context sequence, reusing the prefix that sequence holds, at the same 2 threads.
 *
 * `deno run -A tests/bench/reuse.ts [model.gguf]` prints the table on its own.
 */
import { createBatchedCpuEngine, GgmlType } from "../../inference/mod.ts";
import { createLocalService, promptTokens as tokensOf } from "../../mesh/local-service.ts";
import type { ChatMessage, DoneEvent, InferEvent, InferRequest } from "../../mesh/service.ts";
import { fixturePath } from "../support/fixtures.ts";
import type { TestModelOptions } from "../support/test-models.ts";
import { type Conversation, llamaReuseProcess } from "./llama-reuse.ts";
import { ensureModel } from "./models.ts";
import { median } from "./stats.ts";

export interface ReuseRun {
  promptTokens: number; // of the second turn
  cachedTokens: number; // of them, taken from the cache (the same member's second turn)
  firstMs: number; // time to first token, first turn
  otherMs: number; // second turn, another member: read whole
  reusedMs: number; // second turn, the same member
}

export interface ReuseResult {
  model: string;
  engine: string;
  runs: ReuseRun[];
  /** Every conversation's token lists, the warm-up first, for llama.cpp to read the same. */
  conversations: Conversation[];
}

/** llama.cpp's threads: Grove's CPU kernels take two where there are two cores. */
const LLAMA_THREADS = 2;

/** `lines` lines of a conversation's opening, different for each `seed`. */
function openingText(seed: number, lines: number): string {
  const names = ["Lily", "Tom", "Mia", "Ben", "Sue", "Max", "Ann", "Sam"];
  const things = ["ball", "kite", "tree", "cat", "boat", "cake", "hat", "dog"];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = names[(i * 7 + seed) % names.length], t = things[(i * 3 + seed * 5) % things.length];
    out.push(`Line ${i} of log ${seed}: ${n} found the ${t} near house ${(i * 31 + seed) % 97}.`);
  }
  return out.join("\n");
}

/** A small llama with a 4k context: its prefill cost, not tokenizing, dominates a long turn. */
export function reuseModelOptions(): TestModelOptions {
  return {
    arch: "llama",
    type: GgmlType.Q4_0,
    dim: 256,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    ffn: 768,
    seed: 16,
    contextLength: 4096,
    vocabFrom: fixturePath("vocab/ggml-vocab-llama-spm.gguf"),
  };
}

async function timeToFirst(events: AsyncIterable<InferEvent>) {
  const started = performance.now();
  let ttftMs: number | undefined;
  let text = "";
  for await (const e of events) {
    if (e.type === "token") (ttftMs ??= performance.now() - started, text += e.text);
    if (e.type === "error") throw new Error(`${e.code}: ${e.message}`);
    if (e.type === "done") return { ttftMs: ttftMs!, text, done: e as DoneEvent };
  }
  throw new Error("the answer ended without done");
}

export async function measureReuse(
  path: string,
  model: string,
  runs: number,
  promptTokens = 2000,
): Promise<ReuseResult> {
  const { engine, batch } = await createBatchedCpuEngine({ path, ctxSize: 4096, maxSlots: 4 });
  const service = createLocalService({ engine, batch, id: "bench", maxConcurrent: 4 });
  const chat = (messages: ChatMessage[]): InferRequest => ({
    model: "bench",
    messages,
    params: { temperature: 0, max_tokens: 8 },
  });
  const signal = new AbortController().signal;
  const out: ReuseRun[] = [];
  const conversations: Conversation[] = [];
  const perLine = engine.tokenizer.encode(openingText(0, 100)).length / 100;
  // Run 0, a tenth as long, warms the engine (kernels compiled, the prompt worker started).
  for (let r = 0; r <= runs; r++) {
    const member = `member-${r}`;
    const lines = Math.round(promptTokens / perLine / (r === 0 ? 10 : 1));
    const opening: ChatMessage[] = [
      { role: "system", content: "You are an agent reading logs." },
      { role: "user", content: openingText(r, lines) },
    ];
    const first = await timeToFirst(service.infer(chat(opening), signal, member));
    const next = chat([
      ...opening,
      { role: "assistant", content: first.text },
      { role: "user", content: "Which names came up most, and where?" },
    ]);
    conversations.push({
      first: tokensOf(engine, chat(opening)),
      second: tokensOf(engine, next),
    });
    const other = await timeToFirst(service.infer(next, signal, `${member}-other`));
    const reused = await timeToFirst(service.infer(next, signal, member));
    if (r === 0) continue;
    out.push({
      promptTokens: reused.done.usage.prompt_tokens,
      cachedTokens: reused.done.timings.cached_n ?? 0,
      firstMs: first.ttftMs,
      otherMs: other.ttftMs,
      reusedMs: reused.ttftMs,
    });
  }
  service.close();
  return { model, engine: `Grove CPU (${engine.info.adapter})`, runs: out, conversations };
}

/** llama.cpp native on the same model and conversations (the warm-up one read, not counted). */
export async function measureLlamaReuse(path: string, grove: ReuseResult): Promise<ReuseResult> {
  const runs = await llamaReuseProcess(path, grove.conversations, LLAMA_THREADS);
  return {
    model: grove.model,
    engine: `llama.cpp native CPU, ${LLAMA_THREADS} threads`,
    runs: runs.slice(1).map((r, i) => ({
      ...r,
      promptTokens: grove.conversations[i + 1].second.length,
    })),
    conversations: grove.conversations,
  };
}

const ms = (x: number) => x >= 100 ? x.toFixed(0) : x.toPrecision(3);

export function reuseTable(results: ReuseResult[]): string {
  const lines = [
    "| model | engine | 2nd-turn prompt tok | cached_n | TTFT 1st turn ms | " +
    "TTFT 2nd turn, other member ms | TTFT 2nd turn, reused ms | speed-up vs 1st | vs other member |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const { model, engine, runs } of results) {
    const m = (f: (r: ReuseRun) => number) => median(runs.map(f));
    const reused = m((r) => r.reusedMs);
    lines.push(
      `| ${model} (${runs.length} runs, medians) | ${engine} | ${m((r) => r.promptTokens)} | ` +
        `${m((r) => r.cachedTokens)} | ${ms(m((r) => r.firstMs))} | ${ms(m((r) => r.otherMs))} | ` +
        `${ms(reused)} | ${(m((r) => r.firstMs) / reused).toFixed(1)}× | ` +
        `${(m((r) => r.otherMs) / reused).toFixed(1)}× |`,
    );
  }
  return lines.join("\n") + "\n\nTarget: the second turn of a 2,000-token conversation reaches " +
    "its first token ≥ 10× sooner than the first (issue 16). llama.cpp reads the same token " +
    "lists on one context sequence (the other member: a second, empty sequence), keeping the " +
    "prefix it holds as llama-server's slots do.";
}

/** The bench's `prompt reuse` section: the small 4k-context llama, CPU. */
export async function reuseSection(log: (s: string) => void): Promise<string> {
  const path = await ensureModel(reuseModelOptions());
  const size = ((await Deno.stat(path)).size / 1e6).toFixed(0);
  log(`prompt reuse: 2,000-token conversations on a small llama Q4_0 (${size} MB), CPU...`);
  return "### Prompt reuse\n\n" +
    reuseTable(await reuseRows(path, `llama d256 l4 Q4_0 (${size} MB)`, log));
}

/** Grove's row, then llama.cpp's on the same conversations (left out where it fails, logged). */
async function reuseRows(path: string, model: string, log: (s: string) => void) {
  const grove = await measureReuse(path, model, 3);
  log("prompt reuse: llama.cpp native on the same conversations...");
  try {
    return [grove, await measureLlamaReuse(path, grove)];
  } catch (e) {
    log(`prompt reuse: llama.cpp FAILED ${(e as Error).message}`);
    return [grove];
  }
}

if (import.meta.main) {
  const path = Deno.args[0];
  console.log(
    path
      ? reuseTable(await reuseRows(path, path.split("/").at(-1)!, (s) => console.error(s)))
      : await reuseSection((s) => console.error(s)),
  );
}
