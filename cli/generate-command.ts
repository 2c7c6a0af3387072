/**
 * `grove generate`: a local completion from the command line, like llama-cli.
 * The continuation goes to stdout as it is produced; one stats line to stderr.
 */
import { generate } from "../inference/mod.ts";
import { numberFlag, parseFlags } from "./flags.ts";
import { loadEngine } from "./load-model.ts";

export async function generateCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, {
    model: { type: "string", short: "m" },
    prompt: { type: "string", short: "p", default: "" },
    n: { type: "string", short: "n" },
    temp: { type: "string" },
    seed: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    "min-p": { type: "string" },
    "repeat-penalty": { type: "string" },
    "ctx-size": { type: "string", short: "c" },
    gpu: { type: "boolean", default: false },
  });
  const maxTokens = numberFlag("n", flags.n, 128, (n) => Number.isInteger(n) && n > 0);
  const temperature = numberFlag("temp", flags.temp, 0.8, (n) => n >= 0);
  const seed = flags.seed === undefined
    ? undefined
    : numberFlag("seed", flags.seed, 0, Number.isInteger);
  const ctxSize = flags["ctx-size"] === undefined
    ? undefined
    : numberFlag("ctx-size", flags["ctx-size"], 0, (n) => Number.isInteger(n) && n > 0);

  const engine = await loadEngine(flags.model, {
    gpu: flags.gpu,
    ctxSize,
    onWarmUp: () => console.error("building the GPU kernels with a warm-up run..."),
  });
  const prompt = engine.tokenizer.encode(flags.prompt ?? "");
  const out = new TextEncoder();
  const write = (s: string) => s && Deno.stdout.writeSync(out.encode(s));
  write(flags.prompt ?? "");

  const run = generate(engine, prompt, {
    maxTokens,
    temperature,
    seed,
    topK: numberFlag("top-k", flags["top-k"], 40, (n) => Number.isInteger(n) && n >= 0),
    topP: numberFlag("top-p", flags["top-p"], 0.95, (n) => n > 0 && n <= 1),
    minP: numberFlag("min-p", flags["min-p"], 0.05, (n) => n >= 0 && n <= 1),
    repeatPenalty: numberFlag("repeat-penalty", flags["repeat-penalty"], 1, (n) => n > 0),
  });
  let step = await run.next();
  while (!step.done) {
    write(step.value.text);
    step = await run.next();
  }
  const r = step.value;
  write(r.tail + "\n");
  const { info } = engine;
  console.error(
    `backend: ${info.backend} (${info.adapter}) | model ${engine.config.name}, ${engine.config.arch} | ` +
      `prompt ${r.promptTokens} tokens, generated ${r.completionTokens} | load ${
        info.loadMs.toFixed(0)
      } ms | ` +
      `prefill ${r.prefillTokensPerSecond.toFixed(1)} tok/s | decode ${
        r.decodeTokensPerSecond.toFixed(1)
      } tok/s`,
  );
  return 0;
}
