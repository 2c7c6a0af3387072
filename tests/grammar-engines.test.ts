/**
 * The grammar in the engines' loops: generate() and the scheduler mask before each pick, follow
 * the pick, stop where the grammar allows nothing more ("stop") and say "length" when the budget
 * closed the answer; an engine that samples itself refuses a grammar; a grammar with no way on
 * ends its own sequence with the error, not its neighbours.
 */
import assert from "node:assert/strict";
import {
  type BatchEngine,
  createBatchedCpuEngine,
  createScheduler,
  type Engine,
  generate,
  type GenerateOptions,
  GrammarError,
  jsonSchemaGrammar,
  parseGbnf,
  type Session,
  type StepOutput,
} from "../inference/mod.ts";
import { STORIES } from "./helpers.ts";

const { engine: cpu, batch } = await createBatchedCpuEngine({ path: STORIES, ctxSize: 128 });
const prompt = cpu.tokenizer.encode("Once upon a time");

async function run(engine: Engine, options: GenerateOptions) {
  let text = "";
  const it = generate(engine, prompt, options);
  for (;;) {
    const step = await it.next();
    if (step.done) return { text: text + step.value.tail, result: step.value };
    text += step.value.text;
  }
}

Deno.test("generate(): a grammar that ends stops with 'stop'; a budget close says 'length'", async () => {
  const word = parseGbnf(`root ::= "The " [a-z]{1,4} "."`);
  for (let seed = 1; seed <= 5; seed++) {
    const { text, result } = await run(cpu, { constraint: word, temperature: 1, seed });
    assert.match(text, /^The [a-z]{1,4}\.$/);
    assert.equal(result.finishReason, "stop");
  }
  const schema = jsonSchemaGrammar({
    type: "object",
    properties: { story: { type: "string", minLength: 2 } },
    required: ["story"],
  });
  const { text, result } = await run(cpu, {
    constraint: schema,
    temperature: 1,
    seed: 3,
    maxTokens: 16,
  });
  assert.ok(JSON.parse(text).story.length >= 2, text);
  assert.equal(result.finishReason, "length");
  assert.ok(result.completionTokens <= 16);
});

Deno.test("generate(): greedy decoding with a grammar reads the logits back (no device argmax)", async () => {
  const calls = { greedy: 0, logits: 0 };
  const spied: Engine = {
    ...cpu,
    createSession(): Session {
      const inner = cpu.createSession();
      return {
        get position() {
          return inner.position;
        },
        evaluate: (t) => inner.evaluate(t),
        evaluateAsync: (t) => (calls.logits++, Promise.resolve(inner.evaluate(t))),
        evaluateGreedy: (t) => {
          calls.greedy++;
          const l = inner.evaluate(t);
          return Promise.resolve(l.indexOf(Math.max(...l)));
        },
        rewind: (p) => inner.rewind(p),
      };
    },
  };
  const { text } = await run(spied, {
    constraint: parseGbnf(`root ::= "[" [0-9]{3} "]"`),
    temperature: 0,
  });
  assert.match(text, /^\[[0-9]{3}\]$/);
  assert.equal(calls.greedy, 0);
  assert.ok(calls.logits > 0);
  await run(spied, { temperature: 0, maxTokens: 2 });
  assert.ok(calls.greedy > 0, "without a grammar the device path is still taken");
});

Deno.test("scheduler: constrained and free sequences share steps; each keeps its own rules", async () => {
  const scheduler = createScheduler({ batch, tokenizer: cpu.tokenizer });
  const grammar = jsonSchemaGrammar({ type: "array", items: { type: "integer" }, minItems: 2 });
  const collect = async (options: Parameters<typeof scheduler.generate>[1]) => {
    const it = scheduler.generate(prompt, options);
    let text = "";
    for (;;) {
      const step = await it.next();
      if (step.done) return { text: text + step.value.tail, reason: step.value.finishReason };
      text += step.value.text;
    }
  };
  const [a, b, free] = await Promise.all([
    collect({ constraint: grammar, temperature: 1, seed: 1, maxTokens: 12 }),
    collect({ constraint: parseGbnf(`root ::= "yes" | "no"`), temperature: 1, seed: 2 }),
    collect({ temperature: 1, seed: 3, maxTokens: 12 }),
  ]);
  assert.ok(JSON.parse(a.text).length >= 2, a.text);
  assert.ok(a.reason === "length" || a.reason === "stop");
  assert.ok(b.text === "yes" || b.text === "no", b.text);
  assert.equal(b.reason, "stop");
  assert.ok(free.text.length > 0);
});

Deno.test("scheduler: an engine that samples itself refuses a grammar by name", () => {
  const sampling: BatchEngine<StepOutput> = { ...batch, samples: true };
  const scheduler = createScheduler({ batch: sampling, tokenizer: cpu.tokenizer });
  const it = scheduler.generate(prompt, { constraint: parseGbnf(`root ::= "a"`) });
  return assert.rejects(it.next(), /samples on its own .* cannot follow a grammar constraint/);
});

Deno.test("scheduler: a grammar with no way on ends its sequence with the error; others go on", async () => {
  // Two tokens, "a" and an end token: the grammar wants "b", which no token holds.
  const tokenizer = {
    ...cpu.tokenizer,
    vocabSize: 2,
    tokenBytes: (id: number) => new TextEncoder().encode(id === 0 ? "a" : ""),
    isEndOfGeneration: (id: number) => id === 1,
    createDecoder: () => ({ push: (id: number) => (id === 0 ? "a" : ""), flush: () => "" }),
  };
  const taken = new Set<number>();
  const fake: BatchEngine = {
    maxSlots: 2,
    ctxSize: 64,
    vocabSize: 2,
    maxRows: 64,
    acquire() {
      const slot = [0, 1].find((s) => !taken.has(s));
      if (slot !== undefined) taken.add(slot);
      return slot;
    },
    release: (slot) => void taken.delete(slot),
    position: () => 0,
    rewind: () => {},
    step: (rows) => Promise.resolve(rows.map(() => Float32Array.of(1, 0))),
  };
  const scheduler = createScheduler({ batch: fake, tokenizer });
  const bad = scheduler.generate([0], { constraint: parseGbnf(`root ::= "b"`), maxTokens: 4 });
  const good = scheduler.generate([0], { temperature: 0, maxTokens: 4 });
  const count = async () => {
    let n = 0;
    for (let s = await good.next(); !s.done; s = await good.next()) n++;
    return n;
  };
  const [badEnd, goodEnd] = await Promise.allSettled([bad.next(), count()]);
  assert.equal(badEnd.status, "rejected");
  assert.ok((badEnd as PromiseRejectedResult).reason instanceof GrammarError);
  assert.match(String((badEnd as PromiseRejectedResult).reason), /no token of the vocabulary/);
  assert.deepEqual(goodEnd, { status: "fulfilled", value: 4 });
});
