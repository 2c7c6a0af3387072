/**
 * The bench's models: stories260K (a real, tiny model) and a generated
 * llama model of a realistic ~1B shape, built once and cached on disk (the
 * build quantizes ~850 M random weights in TypeScript, which takes minutes).
 */
import { GgmlType, ggmlTypeName } from "../../inference/mod.ts";
import { writeGguf } from "../support/gguf-writer.ts";
import { buildTestModel, type TestModelOptions } from "../support/test-models.ts";
import { fixturePath, REPO_ROOT, STORIES } from "../helpers.ts";

export interface BenchModel {
  label: string;
  path: string;
  big: boolean; // slow engines get shorter runs on it
}

/** Where built models are cached: `$GROVE_HOME/bench`, else `.grove-bench/` in the repo. */
export function benchCacheDir(): string {
  const home = Deno.env.get("GROVE_HOME");
  return home ? `${home}/bench` : `${REPO_ROOT}.grove-bench`;
}

/** Llama-2-style shape at ~1.1 B parameters; 5632 = 22 × 256, so Q4_K fits too. */
export function bigModelOptions(type: GgmlType): TestModelOptions {
  return {
    arch: "llama",
    type,
    dim: 2048,
    layers: 16,
    heads: 16,
    kvHeads: 4,
    ffn: 5632,
    seed: 7,
    contextLength: 2048,
    vocabFrom: fixturePath("vocab/ggml-vocab-llama-spm.gguf"),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes the model unless the cache holds it; the file appears only when complete. */
export async function ensureModel(o: TestModelOptions): Promise<string> {
  const dir = benchCacheDir();
  const name = `llama-d${o.dim}-l${o.layers}-f${o.ffn}-h${o.heads}-kv${o.kvHeads}-` +
    `${ggmlTypeName(o.type).toLowerCase()}-s${o.seed}.gguf`;
  const path = `${dir}/${name}`;
  if (await exists(path)) return path;
  await Deno.mkdir(dir, { recursive: true });
  const contents = await buildTestModel(o);
  const total = contents.tensors.length;
  let done = 0;
  const started = performance.now();
  const progress = (name: string) => {
    const s = ((performance.now() - started) / 1000).toFixed(0);
    const line = `  building ${name}: tensor ${done}/${total} (${name}) ${s} s`;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r${line.padEnd(100)}`));
  };
  contents.tensors = contents.tensors.map((t) => ({
    ...t,
    data: async () => {
      progress(t.name);
      const data = typeof t.data === "function" ? await t.data() : t.data;
      done++;
      return data;
    },
  }));
  const partial = `${path}.partial`;
  await writeGguf(partial, contents);
  await Deno.rename(partial, path);
  const s = ((performance.now() - started) / 1000).toFixed(0);
  Deno.stderr.writeSync(new TextEncoder().encode(`\r  built ${name} in ${s} s`.padEnd(101) + "\n"));
  return path;
}

/** The models to bench, building the generated ones if needed. */
export async function benchModels(): Promise<BenchModel[]> {
  const models: BenchModel[] = [{ label: "stories260K F32", path: STORIES, big: false }];
  for (const type of [GgmlType.Q4_0, GgmlType.Q4_K]) {
    const path = await ensureModel(bigModelOptions(type));
    const size = (await Deno.stat(path)).size / 1e6;
    models.push({
      label: `llama 1.1B ${ggmlTypeName(type)} (${size.toFixed(0)} MB)`,
      path,
      big: true,
    });
  }
  return models;
}
