// Regenerates tests/reference/long-context-16k.json: what llama.cpp predicts at the end of a
// 16k context on the tiny long-context model (test-models-context.ts), with its default F16 KV
// cache. The prompt is not stored token by token: longPrompt(PROMPT_TOKENS) rebuilds it.
//
//   XDG_RUNTIME_DIR=/tmp npx deno run -A tests/support/make-long-context-reference.ts

import { llamaReference } from "./llama-reference.ts";
import { sha256File } from "./make-references.ts";
import { longPrompt, writeLongContextModel } from "./test-models-context.ts";

/**
 * Past 12k, as the issue asks (attention's cost grows with the square of it: 12.3k keeps the
 * test near half a minute on one core); the cache then grows to the whole 16k context.
 */
export const PROMPT_TOKENS = 12300;
export const STEPS = 40;

export interface LongContextReference {
  model: string;
  sha256: string;
  llamaVersion: string;
  systemInfo: string;
  settings: Record<string, string | number | boolean>;
  promptTokens: number;
  tokens: number[];
  steps: { token: number; logprob: number; top: [number, number][] }[];
}

export function longContextReferencePath(): string {
  return new URL("../reference/long-context-16k.json", import.meta.url).pathname;
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "grove-long-reference-" });
  try {
    const path = await writeLongContextModel(`${dir}/long-context.gguf`);
    const started = performance.now();
    const result = await llamaReference(path, {
      promptTokens: longPrompt(PROMPT_TOKENS),
      steps: STEPS,
      topN: 10,
      threads: 1,
      kvCache: "F16",
    });
    const f32 = (x: number) => Number(x.toPrecision(9));
    const file: LongContextReference = {
      model: "long-context.gguf",
      sha256: await sha256File(path),
      llamaVersion: result.llamaVersion,
      systemInfo: result.systemInfo,
      settings: result.settings,
      promptTokens: PROMPT_TOKENS,
      tokens: result.tokens,
      steps: result.steps.map((s) => ({
        token: s.token,
        logprob: f32(s.logprob),
        top: s.top.map((t): [number, number] => [t.id, f32(t.logprob)]),
      })),
    };
    const out = longContextReferencePath();
    const steps = file.steps.map((s) => `    ${JSON.stringify(s)}`).join(",\n");
    const { steps: _, ...head } = file;
    await Deno.writeTextFile(
      out,
      `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "steps": [\n${steps}\n  ]\n}\n`,
    );
    const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", out] }).output();
    if (fmt.code !== 0) throw new Error(`deno fmt ${out} failed`);
    console.log(
      `${out}: ${STEPS} steps after ${PROMPT_TOKENS} tokens, ` +
        `${(performance.now() - started).toFixed(0)} ms`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
