import assert from "node:assert/strict";
import {
  createCpuEngine,
  type Engine,
  generate,
  type GenerationResult,
  type Session,
} from "../inference/mod.ts";
import { STORIES } from "./helpers.ts";

const engine = await createCpuEngine({ path: STORIES, ctxSize: 128 });

async function run(options: Parameters<typeof generate>[2]) {
  const it = generate(engine, engine.tokenizer.encode("Once upon a time"), options);
  let text = "";
  let step = await it.next();
  while (!step.done) {
    text += step.value.text;
    step = await it.next();
  }
  return { text: text + step.value.tail, result: step.value as GenerationResult };
}

Deno.test("generate: loop options (stop, signal, session) sit beside the sampler's", async () => {
  const controller = new AbortController();
  const session = engine.createSession();
  const { text, result } = await run({
    temperature: 0,
    maxTokens: 40,
    stop: ["Lily"],
    signal: controller.signal,
    session,
  });
  assert.equal(result.finishReason, "stop");
  assert.ok(!text.includes("Lily"), text);
  assert.ok(text.includes("little girl named"), text);
});

Deno.test("generate: an aborted signal cancels at the next token", async () => {
  const controller = new AbortController();
  controller.abort();
  const { result } = await run({ temperature: 0, maxTokens: 40, signal: controller.signal });
  assert.equal(result.finishReason, "cancelled");
  assert.equal(result.completionTokens, 0);
});

Deno.test("generate: max tokens ends with finish reason length", async () => {
  const { result } = await run({ temperature: 0, maxTokens: 5 });
  assert.equal(result.finishReason, "length");
  assert.equal(result.completionTokens, 5);
  assert.equal(result.promptTokens, engine.tokenizer.encode("Once upon a time").length);
});

Deno.test("generate: greedy with a logit_bias reads the logits back (the device argmax has no bias)", async () => {
  let greedy = 0;
  const spied: Engine = {
    ...engine,
    createSession(): Session {
      const inner = engine.createSession();
      return {
        get position() {
          return inner.position;
        },
        evaluate: (t) => inner.evaluate(t),
        evaluateGreedy: (t) => {
          greedy++;
          const l = inner.evaluate(t);
          return Promise.resolve(l.indexOf(Math.max(...l)));
        },
        rewind: (p) => inner.rewind(p),
      };
    },
  };
  const prompt = engine.tokenizer.encode("Once upon a time");
  const ids = async (options: Parameters<typeof generate>[2]) => {
    const out: number[] = [];
    for await (const t of generate(spied, prompt, { temperature: 0, maxTokens: 6, ...options })) {
      out.push(t.id);
    }
    return out;
  };
  const plain = await ids({});
  assert.ok(greedy > 0, "without a bias the device path is taken");
  greedy = 0;
  const banned = await ids({ logitBias: { [plain[0]]: -100 } });
  assert.equal(greedy, 0);
  assert.notEqual(banned[0], plain[0]);
});
