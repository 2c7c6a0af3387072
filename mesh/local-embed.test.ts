import assert from "node:assert/strict";
import { createCpuEngine, type Engine, type Pooling } from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { createLocalService } from "./local-service.ts";
import { createLocalEmbedder } from "./local-embed.ts";
import { createPromptEncoder } from "./prompt-encoder.ts";
import { type EmbedRequest, ServiceError } from "./service.ts";
import { eventually } from "../tests/support/poll.ts";

const CTX = 64;
const engine: Engine = await createCpuEngine({ path: STORIES, ctxSize: CTX });
const never = () => new AbortController().signal;
const embedReq = (input: EmbedRequest["embed"]["input"], more = {}): EmbedRequest => ({
  model: "stories260K",
  embed: { input, ...more },
});
const isCode = (code: string, re = /./) => (e: unknown) =>
  e instanceof ServiceError && e.code === code && re.test(e.message);

Deno.test("a served model embeds texts and token ids as its engine does; it advertises embeddings", async () => {
  const service = createLocalService({ engine, id: "stories260K" });
  try {
    assert.ok(service.features().includes("embeddings"));
    const text = "Once upon a time there was a cat";
    const ids = engine.tokenizer.encode("A dog ran");
    const got = await service.embed!(embedReq([text, ids, text]), never());
    const direct = await engine.embed!(engine.tokenizer.encode(text), "last");
    assert.deepEqual(got.data[0], direct);
    assert.deepEqual(got.data[1], await engine.embed!(ids, "last"));
    assert.deepEqual(got.data[2], got.data[0]);
    const total = 2 * engine.tokenizer.encode(text).length + ids.length;
    assert.deepEqual(got.usage, { prompt_tokens: total });
    const mean = await service.embed!(embedReq([text], { pooling: "mean" }), never());
    assert.deepEqual(mean.data[0], await engine.embed!(engine.tokenizer.encode(text), "mean"));
    assert.notDeepEqual(mean.data[0], got.data[0]);
  } finally {
    service.close();
  }
});

Deno.test("refusals name the input: past the context, outside the vocabulary, another model", async () => {
  const service = createLocalService({ engine, id: "stories260K" });
  try {
    const long = "once upon a time ".repeat(60);
    await assert.rejects(
      service.embed!(embedReq(["short", long]), never()),
      isCode("context_length_exceeded", /input\[1\]: This model's maximum context length is 64/),
    );
    await assert.rejects(
      service.embed!(embedReq([[1, 2], Array(CTX + 1).fill(5)]), never()),
      isCode("context_length_exceeded", /input\[1\] has 65 tokens/),
    );
    await assert.rejects(
      service.embed!(embedReq([[1, engine.tokenizer.vocabSize]]), never()),
      isCode("invalid_request", /input\[0\] holds token id 512, outside the vocabulary/),
    );
    await assert.rejects(
      service.embed!({ model: "other", embed: { input: ["a"] } }, never()),
      isCode("model_not_found"),
    );
    // truncate: the first CTX tokens, exactly what a text cut there gives.
    const cut = await service.embed!(embedReq([long], { truncate: true }), never());
    const first = engine.tokenizer.encode(long).slice(0, CTX);
    assert.deepEqual(cut.data[0], await engine.embed!(first, "last"));
    assert.equal(cut.usage.prompt_tokens, CTX);
    const ids = await service.embed!(
      embedReq([Array(CTX + 9).fill(5)], { truncate: true }),
      never(),
    );
    assert.equal(ids.usage.prompt_tokens, CTX);
  } finally {
    service.close();
  }
});

Deno.test("one request computes at a time, in order; a full line is busy; a split model has none", async () => {
  let release!: () => void;
  const order: string[] = [];
  const model = {
    ...engine,
    async embed(tokens: readonly number[], _pooling: Pooling) {
      order.push(`start ${tokens.length}`);
      if (tokens.length === 1) await new Promise<void>((r) => release = r);
      order.push(`end ${tokens.length}`);
      return new Float32Array([1]);
    },
  };
  const info = { id: "stories260K", name: "Stories" };
  const prompts = createPromptEncoder({ model: { ...engine, template: undefined }, metadata: {} });
  const embedder = createLocalEmbedder({ model, info, prompts, maxWaiting: 1 });
  const first = embedder.embed(embedReq([[7]]), never());
  const second = embedder.embed(embedReq([[7, 8]]), never());
  await eventually(() => embedder.load().queued === 1, { what: "the second request waiting" });
  assert.deepEqual(embedder.load(), { active: 1, queued: 1 });
  await assert.rejects(embedder.embed(embedReq([[9]]), never()), isCode("busy"));
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ["start 1", "end 1", "start 2", "end 2"]);
  assert.deepEqual(embedder.load(), { active: 0, queued: 0 });

  const split = createLocalEmbedder({
    model: { ...engine, embed: undefined },
    info,
    prompts,
  });
  assert.equal(split.supported, false);
  await assert.rejects(split.embed(embedReq(["a"]), never()), isCode("invalid_request", /split/));
  prompts.close();
});
