/**
 * The bench's models: stories260K (a real, tiny model), a generated llama model of a
 * realistic ~1B shape and a generated mixture-of-experts qwen3moe, built once and cached on
 * disk (the build quantizes ~850 M random weights in TypeScript, which takes minutes).
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

/**
 * A qwen3moe of ~0.4 B parameters, 8 experts with 2 used (~0.15 B active per token), in the
 * Q4_K_M mix published MoE GGUFs use (test-models-moe.ts): its decode reads a quarter of the
 * expert weights per token, so it shows whether only the routed experts are read.
 */
export function moeModelOptions(): TestModelOptions {
  return {
    arch: "qwen3moe",
    type: GgmlType.Q4_K,
    dim: 1024,
    layers: 12,
    heads: 16,
    kvHeads: 4,
    headDim: 64,
    ffn: 2048,
    moe: { experts: 8, used: 2, expertFfn: 1024, mix: "Q4_K_M" },
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
  const kind = o.moe ? `${o.arch}-e${o.moe.experts}x${o.moe.used}-ef${o.moe.expertFfn}-` : "llama-";
  const type = (o.moe?.mix ?? ggmlTypeName(o.type)).toLowerCase();
  const name = `${kind}d${o.dim}-l${o.layers}-f${o.ffn}-h${o.heads}-kv${o.kvHeads}-` +
    `${type}-s${o.seed}.gguf`;
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
  models.push(await moeBenchModel());
  return models;
}

/** The generated MoE model (built if needed). */
export async function moeBenchModel(): Promise<BenchModel> {
  const path = await ensureModel(moeModelOptions());
  const size = (await Deno.stat(path)).size / 1e6;
  return { label: `qwen3moe 8×2 experts Q4_K_M (${size.toFixed(0)} MB)`, path, big: true };
}
