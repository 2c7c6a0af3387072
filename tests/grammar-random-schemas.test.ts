/**
 * 200 random JSON Schemas (a seeded generator, tests/support/random-schemas.ts): each compiled to a
 * grammar and generated from stories260K at temperature 1 with a random seed and a small
 * max_tokens (24–64, or the schema's fewest bytes when more), through the scheduler on the CPU
 * batch engine; every answer parses and validates with Ajv, the budget close included. Then 40
 * of them on the WebGPU engine: through the scheduler on its batch engine (logits read back,
 * masked on the host), and through generate() at temperature 0, where the unconstrained path
 * would pick the argmax on the device.
 */
import assert from "node:assert/strict";
import {
  type BatchEngine,
  createBatchedCpuEngine,
  createBatchedWebGpuEngine,
  createScheduler,
  type Engine,
  generate,
  type Grammar,
  jsonSchemaGrammar,
  type Tokenizer,
} from "../inference/mod.ts";
import { matcherOf } from "../inference/grammar/matcher.ts";
import { createSchemaGenerator, createValidator } from "./support/random-schemas.ts";
import { createTestGpu } from "./support/gpu.ts";
import { STORIES } from "./helpers.ts";

const SCHEMAS = 200;
const GPU_SCHEMAS = 40;
const SLOTS = 8;

interface Case {
  index: number;
  schema: Record<string, unknown>;
  grammar: Grammar;
  maxTokens: number;
  seed: number;
}

function cases(seed: number, count: number): Case[] {
  const gen = createSchemaGenerator(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(gen.rng.nextFloat() * (hi - lo + 1));
  return Array.from({ length: count }, (_, index) => {
    const schema = gen.next();
    const grammar = jsonSchemaGrammar(schema);
    const m = matcherOf(grammar);
    const least = m.minBytes(m.start);
    return {
      index,
      schema,
      grammar,
      maxTokens: Math.max(int(24, 64), least),
      seed: int(1, 2 ** 30),
    };
  });
}

const ajv = createValidator();

interface Outcome {
  text: string;
  finishReason: string;
  tokens: number;
}

function verify(c: Case, out: Outcome, engine: string) {
  const where = `${engine}, schema ${c.index} (seed ${c.seed}, max_tokens ${c.maxTokens}): ` +
    `${
      JSON.stringify(c.schema)
    }\n  answer (${out.finishReason}, ${out.tokens} tokens): ${out.text}`;
  let value: unknown;
  try {
    value = JSON.parse(out.text);
  } catch (e) {
    assert.fail(`${where}\n  does not parse: ${(e as Error).message}`);
  }
  const validate = ajv.compile(c.schema);
  assert.ok(validate(value), `${where}\n  invalid: ${ajv.errorsText(validate.errors)}`);
  assert.ok(out.tokens <= c.maxTokens, where);
  assert.ok(out.finishReason === "stop" || out.finishReason === "length", where);
}

async function viaScheduler(
  batch: BatchEngine,
  tokenizer: Tokenizer,
  list: Case[],
  temperature = 1,
) {
  const scheduler = createScheduler({ batch, tokenizer, maxConcurrent: SLOTS });
  const prompt = tokenizer.encode("Answer in JSON:");
  const reasons = new Map<string, number>();
  await Promise.all(list.map(async (c) => {
    const it = scheduler.generate(prompt, {
      constraint: c.grammar,
      maxTokens: c.maxTokens,
      temperature,
      seed: c.seed,
    });
    let text = "", tokens = 0;
    for (;;) {
      const step = await it.next();
      if (step.done) {
        text += step.value.tail;
        tokens = step.value.completionTokens;
        reasons.set(step.value.finishReason, (reasons.get(step.value.finishReason) ?? 0) + 1);
        verify(c, { text, finishReason: step.value.finishReason, tokens }, "scheduler");
        return;
      }
      text += step.value.text;
    }
  }));
  return reasons;
}

async function viaGenerate(engine: Engine, c: Case, temperature: number) {
  const prompt = engine.tokenizer.encode("Answer in JSON:");
  const it = generate(engine, prompt, {
    constraint: c.grammar,
    maxTokens: c.maxTokens,
    temperature,
    seed: c.seed,
  });
  let text = "";
  for (;;) {
    const step = await it.next();
    if (step.done) {
      text += step.value.tail;
      verify(c, {
        text,
        finishReason: step.value.finishReason,
        tokens: step.value.completionTokens,
      }, "generate");
      return step.value.finishReason;
    }
    text += step.value.text;
  }
}

Deno.test("200 random JSON Schemas: every constrained answer parses and validates (CPU)", async () => {
  const { engine, batch } = await createBatchedCpuEngine({
    path: STORIES,
    ctxSize: 256,
    maxSlots: SLOTS,
  });
  const list = cases(12, SCHEMAS);
  const started = performance.now();
  const reasons = await viaScheduler(batch, engine.tokenizer, list);
  const s = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `  ${SCHEMAS} schemas in ${s} s; finish reasons ${JSON.stringify(Object.fromEntries(reasons))}`,
  );
  // Small budgets: the close must have been forced on some, and others ended on their own.
  assert.ok((reasons.get("length") ?? 0) > 0, "some answers were closed by the budget");
  assert.ok((reasons.get("stop") ?? 0) > 0, "some answers ended on their own");
});

Deno.test("40 random JSON Schemas on WebGPU: the scheduler and generate() both keep to them", async () => {
  const { engine, batch } = await createBatchedWebGpuEngine({
    path: STORIES,
    ctxSize: 256,
    maxSlots: SLOTS,
    gpu: await createTestGpu(),
  });
  try {
    const list = cases(34, GPU_SCHEMAS);
    const started = performance.now();
    await viaScheduler(batch, engine.tokenizer, list.slice(0, GPU_SCHEMAS - 8));
    // Greedy: without the grammar generate() would take the device's argmax, unmasked.
    for (const c of list.slice(GPU_SCHEMAS - 8)) await viaGenerate(engine, c, 0);
    const s = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`  ${GPU_SCHEMAS} schemas on ${engine.info.adapter} in ${s} s`);
  } finally {
    engine.close();
  }
});
