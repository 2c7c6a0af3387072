/**
 * llama.cpp's prompt reuse, the yardstick for reuse.ts: the same conversations' token lists (as
 * Grove's service rendered them) on one context sequence of node-llama-cpp, as llama-server
 * keeps a slot's cache: the first turn read whole and answered (8 tokens), then the second turn's
 * tokens matched against what the sequence holds, the differing tail erased and only the rest
 * read. The second turn read whole on a second, empty sequence stands for another member's.
 *
 * Runs in its own process: `deno run -A tests/bench/llama-reuse.ts TURNS.json THREADS` prints
 * one JSON line (a LlamaReuseRun per conversation).
 */
import { nextToken, openLlama } from "./llama-runner.ts";
import type { LlamaContextSequence } from "node-llama-cpp";
import { runChildJson } from "./child.ts";

export interface Conversation {
  first: number[]; // the first turn's prompt tokens
  second: number[]; // the second turn's (the first, its answer and the next question)
}

export interface LlamaReuseRun {
  cachedTokens: number;
  firstMs: number;
  otherMs: number;
  reusedMs: number;
}

const ANSWER = 8; // tokens, as reuse.ts's max_tokens

/** Milliseconds to the first token of `tokens` on `sequence`, reusing what it holds. */
async function ttft(sequence: LlamaContextSequence, tokens: number[]) {
  const t0 = performance.now();
  await sequence.adaptStateToTokens(tokens as never, false);
  // At least the last token is read: its logits give the first token.
  const from = Math.min(sequence.nextTokenIndex, tokens.length - 1);
  if (from < sequence.nextTokenIndex) {
    await sequence.eraseContextTokenRanges([{ start: from, end: sequence.nextTokenIndex }]);
  }
  let token = await nextToken(sequence, tokens.slice(from));
  const ms = performance.now() - t0;
  for (let i = 1; i < ANSWER; i++) token = await nextToken(sequence, [token]);
  return { ms, cached: from };
}

export async function measureLlamaReuse(
  path: string,
  conversations: Conversation[],
  threads: number,
): Promise<LlamaReuseRun[]> {
  const llama = await openLlama(threads);
  try {
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    const longest = Math.max(...conversations.map((c) => c.second.length));
    const context = await model.createContext({
      contextSize: longest + ANSWER + 8,
      sequences: 2,
      threads,
    });
    const mine = context.getSequence(), other = context.getSequence();
    const out: LlamaReuseRun[] = [];
    for (const c of conversations) {
      await mine.clearHistory();
      await other.clearHistory();
      const first = await ttft(mine, c.first);
      const cold = await ttft(other, c.second);
      const reused = await ttft(mine, c.second);
      out.push({
        cachedTokens: reused.cached,
        firstMs: first.ms,
        otherMs: cold.ms,
        reusedMs: reused.ms,
      });
    }
    await context.dispose();
    await model.dispose();
    return out;
  } finally {
    await llama.dispose();
  }
}

/** Runs measureLlamaBatching in a fresh process (llama.cpp's threads and heap of its own). */
export async function llamaReuseProcess(
  path: string,
  conversations: Conversation[],
  threads: number,
): Promise<LlamaReuseRun[]> {
  const file = await Deno.makeTempFile({ prefix: "grove-reuse-", suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify({ path, conversations }));
    const script = new URL(import.meta.url).pathname;
    return await runChildJson<LlamaReuseRun[]>(script, [file, String(threads)]);
  } finally {
    await Deno.remove(file);
  }
}

if (import.meta.main) {
  const [file, threads] = Deno.args;
  const { path, conversations } = JSON.parse(await Deno.readTextFile(file));
  console.log(JSON.stringify(await measureLlamaReuse(path, conversations, Number(threads))));
  Deno.exit(0); // llama.cpp's addon can keep the event loop alive after its dispose
}
