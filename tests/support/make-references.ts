// Regenerates tests/reference/*.json: what llama.cpp predicts for each GGUF file Grove is tested
// on, one JSON file per model. Run from the repository root:
//
//   XDG_RUNTIME_DIR=/tmp npx deno run -A tests/support/make-references.ts [name...]
//
// GROVE_MODEL_PATH names the shared model folders, searched in order (fixtures.ts; default
// ../shared/models). With names, only those references are rewritten.

import { llamaReference, type LlamaReferenceResult } from "./llama-reference.ts";
import { REFERENCE_MODELS, type ReferenceModel, type ReferencePrompt } from "./reference-models.ts";

export type { ReferencePrompt };

/** One prediction: the greedy token, its log-prob, and the top tokens as [id, logprob] pairs. */
export interface ReferenceStep {
  token: number;
  logprob: number;
  top: [number, number][];
}

export interface ReferenceRun extends ReferencePrompt {
  /** The greedy continuation, one token per entry of `steps`. */
  tokens: number[];
  steps: ReferenceStep[];
}

export interface ReferenceFile {
  model: string;
  /** sha256 of the GGUF the references were made from; the agreement tests fail on a mismatch. */
  sha256: string;
  llamaVersion: string;
  systemInfo: string;
  settings: Record<string, string | number | boolean>;
  /** Values are natural-log softmax over the vocabulary, not raw logits (see llama-reference). */
  values: "logprob";
  runs: ReferenceRun[];
}

export function referencePath(name: string): string {
  return new URL(`../reference/${name}.json`, import.meta.url).pathname;
}

export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// float32 values round-trip through 9 significant digits; more would only add noise to diffs.
function f32(x: number): number {
  return Number(x.toPrecision(9));
}

function toRun(prompt: ReferencePrompt, result: LlamaReferenceResult): ReferenceRun {
  return {
    ...prompt,
    tokens: result.tokens,
    steps: result.steps.map((s) => ({
      token: s.token,
      logprob: f32(s.logprob),
      top: s.top.map((t): [number, number] => [t.id, f32(t.logprob)]),
    })),
  };
}

/** Runs llama.cpp for every prompt of one spec and returns the reference file's content. */
export async function makeReference(spec: ReferenceModel, dir: string): Promise<ReferenceFile> {
  const path = await spec.build(dir);
  const runs: ReferenceRun[] = [];
  let last: LlamaReferenceResult | undefined;
  for (const prompt of spec.prompts) {
    last = await llamaReference(path, {
      promptTokens: prompt.promptTokens,
      steps: spec.steps,
      topN: spec.topN,
      threads: 1,
      kvCache: spec.kvCache,
    });
    runs.push(toRun(prompt, last));
  }
  if (last === undefined) throw new Error(`make-references: ${spec.name} has no prompts`);
  return {
    model: path.slice(path.lastIndexOf("/") + 1),
    sha256: await sha256File(path),
    llamaVersion: last.llamaVersion,
    systemInfo: last.systemInfo,
    settings: last.settings,
    values: "logprob",
    runs,
  };
}

// Pairs stay on one line; `deno fmt` (run after writing, so `deno fmt --check` passes on the
// committed files) then breaks up whatever is wider than the project's line width.
function formatReference(file: ReferenceFile): string {
  const { runs, ...head } = file;
  const headJson = JSON.stringify(head, null, 2).slice(0, -2);
  const runJson = runs.map((run) => {
    const { steps, tokens, ...rest } = run;
    const restJson = JSON.stringify(rest, null, 2).slice(0, -2).replaceAll("\n", "\n    ");
    const stepLines = steps.map((s) => `        ${JSON.stringify(s)}`).join(",\n");
    return `    ${restJson},\n      "tokens": ${JSON.stringify(tokens)},\n` +
      `      "steps": [\n${stepLines}\n      ]\n    }`;
  });
  return `${headJson},\n  "runs": [\n${runJson.join(",\n")}\n  ]\n}\n`;
}

async function denoFmt(path: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", path],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `make-references: deno fmt ${path} failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

async function main(names: string[]): Promise<void> {
  const all = REFERENCE_MODELS;
  const unknown = names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new Error(
      `make-references: unknown reference(s) ${unknown.join(", ")}; known: ` +
        all.map((s) => s.name).join(", "),
    );
  }
  const specs = all.filter((s) => names.length === 0 || names.includes(s.name));
  await Deno.mkdir(new URL("../reference/", import.meta.url), { recursive: true });
  // One model llama.cpp rejects should not hide the others: report all failures at the end.
  const failures: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "grove-references-" });
  for (const spec of specs) {
    const started = performance.now();
    try {
      const file = await makeReference(spec, dir);
      await Deno.writeTextFile(referencePath(spec.name), formatReference(file));
      await denoFmt(referencePath(spec.name));
      const ms = (performance.now() - started).toFixed(0);
      console.log(`${referencePath(spec.name)}: ${file.runs.length} runs, ${ms} ms`);
    } catch (e) {
      failures.push(`${spec.name}: ${e instanceof Error ? e.message : String(e)}`);
      console.error(`FAILED ${failures[failures.length - 1]}`);
    }
  }
  await Deno.remove(dir, { recursive: true });
  if (failures.length > 0) {
    throw new Error(`make-references: ${failures.length} failed:\n${failures.join("\n")}`);
  }
}

if (import.meta.main) await main(Deno.args);
