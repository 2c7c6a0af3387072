import assert from "node:assert/strict";
import {
  createBatchedCpuEngine,
  createCpuEngine,
  type Engine,
  renderChat,
} from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { createLocalService, type GenerationEnd } from "./local-service.ts";
import type { Constraint, InferEvent, InferRequest } from "./service.ts";
import { eventually } from "../tests/support/poll.ts";

let shared: Engine | undefined;
async function engine(): Promise<Engine> {
  return shared ??= await createCpuEngine({ path: STORIES, ctxSize: 128 });
}

async function collect(events: AsyncIterable<InferEvent>): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const never = () => new AbortController().signal;
const chat = (content: string, params: InferRequest["params"] = {}): InferRequest => ({
  model: "stories260K",
  messages: [{ role: "user", content }],
  params: { temperature: 0, max_tokens: 8, ...params },
});

Deno.test("chat: renders ChatML (no template in stories260K), counts its tokens, ends with done", async () => {
  const e = await engine();
  const service = createLocalService({ engine: e, id: "stories260K" });
  const events = await collect(service.infer(chat("Once upon a time"), never()));
  const done = events.at(-1)!;
  assert.equal(done.type, "done");
  const rendered = renderChat({
    messages: [{ role: "user", content: "Once upon a time" }],
    addGenerationPrompt: true,
  });
  assert.match(rendered, /^<\|im_start\|>user\n/);
  if (done.type !== "done") return;
  assert.equal(done.usage.prompt_tokens, e.tokenizer.encode(rendered).length);
  assert.equal(done.usage.completion_tokens, 8);
  assert.equal(done.finish_reason, "length");
  assert.equal(events.filter((x) => x.type === "token").length, 8);
  assert.ok(done.timings.prompt_ms > 0 && done.timings.predicted_n === 8);
});

Deno.test("greedy generation is the same twice; a plain prompt works too", async () => {
  const service = createLocalService({ engine: await engine(), id: "stories260K" });
  const req: InferRequest = { model: "stories260K", prompt: "Lily", params: { temperature: 0 } };
  const text = async () =>
    (await collect(service.infer({ ...req, params: { ...req.params, max_tokens: 12 } }, never())))
      .map((x) => x.type === "token" ? x.text : x.type === "done" ? x.tail ?? "" : "").join("");
  const a = await text();
  assert.ok(a.length > 0);
  assert.equal(await text(), a);
});

Deno.test("unknown model, oversized prompt and bad sampler values are error events", async () => {
  const e = await createCpuEngine({ path: STORIES, ctxSize: 64 });
  const service = createLocalService({ engine: e, id: "stories260K" });
  const [missing] = await collect(service.infer({ ...chat("hi"), model: "gpt-4" }, never()));
  assert.deepEqual(missing.type === "error" && missing.code, "model_not_found");
  const [long] = await collect(service.infer(chat("a long story ".repeat(20)), never()));
  assert.equal(long.type, "error");
  if (long.type === "error") {
    assert.equal(long.code, "context_length_exceeded");
    assert.match(long.message, /maximum context length is 64 tokens/);
  }
  const [bad] = await collect(service.infer(chat("hi", { top_k: -3 }), never()));
  assert.deepEqual(bad.type === "error" && bad.code, "invalid_request");
  const [role] = await collect(
    service.infer({
      model: "stories260K",
      messages: [{ role: "wizard", content: "x" }],
      params: {},
    }, never()),
  );
  assert.deepEqual(role.type === "error" && role.code, "invalid_request");
});

Deno.test("FIFO: a second request waits its turn, the queue depth is reported", async () => {
  const service = createLocalService({
    engine: await engine(),
    id: "stories260K",
    maxConcurrent: 1,
  });
  const order: string[] = [];
  const first = service.infer(chat("one", { max_tokens: 20 }), never())[Symbol.asyncIterator]();
  await first.next(); // holds the engine now
  const second = collect(service.infer(chat("two"), never())).then((ev) => {
    order.push("second done");
    return ev;
  });
  await eventually(() => service.load().queued === 1, { what: "the second request never queued" });
  assert.deepEqual(service.load(), { active: 1, queued: 1 });
  while (!(await first.next()).done) { /* drain */ }
  order.push("first done");
  const events = await second;
  assert.deepEqual(order, ["first done", "second done"]);
  assert.equal(events.at(-1)?.type, "done");
  assert.deepEqual(service.load(), { active: 0, queued: 0 });
});

Deno.test("abort: a queued request leaves the line, a running one stops generating", async () => {
  const ends: GenerationEnd[] = [];
  const service = createLocalService(
    { engine: await engine(), id: "stories260K", maxConcurrent: 1 },
    { onGenerationEnd: (e) => ends.push(e) },
  );
  const running = new AbortController();
  const it = service.infer(chat("go", { max_tokens: 100 }), running.signal)[Symbol.asyncIterator]();
  await it.next();
  const queued = new AbortController();
  const waiting = collect(service.infer(chat("wait"), queued.signal));
  await eventually(() => service.load().queued === 1, { what: "the request never queued" });
  queued.abort();
  assert.deepEqual(await waiting, []);
  assert.equal(service.load().queued, 0);

  running.abort();
  const rest: InferEvent[] = [];
  for (let s = await it.next(); !s.done; s = await it.next()) rest.push(s.value);
  assert.ok(rest.every((e) => e.type === "token"), "a cancelled run sends no done");
  assert.equal(ends.length, 1);
  assert.equal(ends[0].finishReason, "cancelled");
  assert.ok(ends[0].completionTokens < 100);
  assert.deepEqual(service.load(), { active: 0, queued: 0 });
});

Deno.test("logprobs: each token carries its piece, logprob and n alternatives", async () => {
  const service = createLocalService({ engine: await engine(), id: "stories260K" });
  const events = await collect(
    service.infer({
      model: "stories260K",
      prompt: "Once upon a time",
      params: { temperature: 0, max_tokens: 4, logprobs: true, top_logprobs: 3 },
    }, never()),
  );
  const tokens = events.filter((e) => e.type === "token");
  assert.equal(tokens.length, 4);
  for (const t of tokens) {
    if (t.type !== "token") continue;
    assert.equal(typeof t.token, "string");
    assert.ok(t.logprob! <= 0);
    assert.equal(t.top_logprobs!.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.top_logprobs![0].token, t.token);
  }
  const plain = await collect(service.infer(chat("x", { max_tokens: 2 }), never()));
  assert.ok(plain.every((e) => e.type !== "token" || e.logprob === undefined));
});

Deno.test("concurrent: requests decode together up to maxConcurrent, each as it would alone", async () => {
  const e = await engine();
  const alone = createLocalService({ engine: e, id: "stories260K", maxConcurrent: 1 });
  const together = createLocalService({
    engine: e,
    id: "stories260K",
    maxConcurrent: 2,
    batch: (await createBatchedCpuEngine({ path: STORIES, ctxSize: 128, maxSlots: 2 })).batch,
  });
  const prompts = ["one", "two", "three"];
  const text = (ev: InferEvent[]) => ev.map((x) => x.type === "token" ? x.text : "").join("");
  const want = [];
  for (const p of prompts) want.push(text(await collect(alone.infer(chat(p), never()))));
  const its = prompts.map((p) => together.infer(chat(p), never())[Symbol.asyncIterator]());
  const firsts = await Promise.all(its.slice(0, 2).map((it) => it.next()));
  const third = its[2].next();
  await eventually(() => together.load().queued === 1, { what: "the third request never queued" });
  assert.deepEqual(together.load(), { active: 2, queued: 1 });
  const rest = async (first: IteratorResult<InferEvent>, it: AsyncIterator<InferEvent>) => {
    const ev = [first.value];
    for (let s = await it.next(); !s.done; s = await it.next()) ev.push(s.value);
    return text(ev);
  };
  const got = await Promise.all([
    rest(firsts[0], its[0]),
    rest(firsts[1], its[1]),
    rest(await third, its[2]),
  ]);
  assert.deepEqual(got, want);
  assert.deepEqual(together.load(), { active: 0, queued: 0 });
});

Deno.test("a 4 MiB prompt is refused at once; a long chat is judged in the prompt worker", async () => {
  const e = await createCpuEngine({ path: STORIES, ctxSize: 64 });
  const service = createLocalService({ engine: e, id: "stories260K" });
  try {
    const started = performance.now();
    const [huge] = await collect(
      service.infer({ ...chat("x"), prompt: "a".repeat(4 << 20), messages: undefined }, never()),
    );
    const ms = performance.now() - started;
    assert.ok(
      huge.type === "error" && huge.code === "context_length_exceeded",
      JSON.stringify(huge),
    );
    assert.ok(ms < 200, `took ${ms} ms`);
    const [long] = await collect(service.infer(chat("a story ".repeat(1000)), never()));
    assert.ok(
      long.type === "error" && long.code === "context_length_exceeded",
      JSON.stringify(long),
    );
    assert.match(long.message, /maximum context length is 64 tokens/);
  } finally {
    service.close();
  }
});

Deno.test("a full wait queue answers a typed busy error, and the queue keeps serving", async () => {
  const service = createLocalService({
    engine: await engine(),
    id: "stories260K",
    maxConcurrent: 1,
    maxWaiting: 1,
  });
  const first = service.infer(chat("one", { max_tokens: 20 }), never())[Symbol.asyncIterator]();
  await first.next(); // holds the only slot
  const second = collect(service.infer(chat("two"), never())); // waits in the line of one
  await eventually(() => service.load().queued === 1, { what: "the second request never queued" });
  const third = await collect(service.infer(chat("three"), never()));
  assert.equal(third.length, 1);
  assert.equal(third[0].type === "error" && third[0].code, "busy");
  assert.match(third[0].type === "error" ? third[0].message : "", /busy/);
  while (!(await first.next()).done) { /* drain */ }
  assert.equal((await second).at(-1)?.type, "done");
});

Deno.test("logit_bias: a banned greedy token never appears, +100 forces one, ids are checked", async () => {
  const e = await engine();
  const service = createLocalService({ engine: e, id: "stories260K" });
  const ids = async (params: InferRequest["params"]) =>
    (await collect(service.infer(chat("Once upon a time", { max_tokens: 12, ...params }), never())))
      .flatMap((x) => x.type === "token" ? [x.id] : []);
  const greedy = await ids({});
  assert.equal(greedy.length, 12);
  const banned = [...new Set(greedy)].slice(0, 3);
  const bias = Object.fromEntries(banned.map((id) => [String(id), -100]));
  const without = await ids({ logit_bias: bias });
  assert.equal(without.length, 12);
  for (const id of banned) assert.ok(!without.includes(id), `${id} in ${without}`);
  // A token the model would not pick, forced at every step (an end token would stop it).
  const forced = [...Array(e.tokenizer.vocabSize).keys()].find((id) =>
    !greedy.includes(id) && !e.tokenizer.isEndOfGeneration(id) && id > 3
  )!;
  assert.deepEqual(await ids({ logit_bias: { [forced]: 100 } }), Array(12).fill(forced));
  const [bad] = await collect(
    service.infer(chat("hi", { logit_bias: { [e.tokenizer.vocabSize]: 1 } }), never()),
  );
  assert.equal(bad.type, "error");
  if (bad.type === "error") {
    assert.equal(bad.code, "invalid_request");
    assert.match(bad.message, /outside the vocabulary/);
  }
  assert.deepEqual(service.features(), [
    "constraint",
    "logit_bias",
    "penalties",
    "tools",
    "resume",
    "embeddings",
    "tokenize",
  ]);
});

Deno.test("a model that samples on its last stage refuses logit_bias by name, takes penalties", async () => {
  const { batch } = await createBatchedCpuEngine({ path: STORIES, ctxSize: 128, maxSlots: 1 });
  // The pipeline's face: it samples itself, so neither bias nor grammar reaches its sampler.
  const service = createLocalService({
    engine: await engine(),
    id: "stories260K",
    batch: Object.assign(Object.create(batch), { samples: true }),
  });
  assert.deepEqual(service.features(), ["penalties", "tools", "tokenize"]);
  const [refused] = await collect(service.infer(chat("hi", { logit_bias: { "5": 1 } }), never()));
  assert.equal(refused.type, "error");
  if (refused.type === "error") {
    assert.equal(refused.code, "invalid_request");
    assert.match(refused.message, /^logit_bias is not supported by this node's `stories260K`/);
  }
  const [json] = await collect(
    service.infer(chat("hi", { constraint: { type: "json_object" } }), never()),
  );
  assert.match(json.type === "error" ? json.message : "", /^response_format is not supported/);
  batch.close?.();
});

Deno.test("constraint: json_object, a JSON Schema and a GBNF grammar hold; a bad one is named", async () => {
  const service = createLocalService({ engine: await engine(), id: "stories260K" });
  const answer = async (constraint: Constraint, max_tokens: number, seed = 1) => {
    const events = await collect(
      service.infer(chat("Tell me", { temperature: 1, seed, max_tokens, constraint }), never()),
    );
    const done = events.at(-1)!;
    assert.equal(done.type, "done", JSON.stringify(done));
    const text = events.map((e) => e.type === "token" ? e.text : "").join("");
    return { text: text + (done.type === "done" ? done.tail ?? "" : ""), done };
  };
  for (const seed of [1, 2, 3]) {
    const { text } = await answer({ type: "json_object" }, 40, seed);
    const value = JSON.parse(text);
    assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), text);
  }
  const schema = {
    type: "object",
    properties: { mood: { enum: ["happy", "sad"] }, age: { type: "integer", maximum: 9 } },
    required: ["mood", "age"],
    additionalProperties: false,
  };
  for (const seed of [1, 2]) {
    const { text } = await answer({ type: "json_schema", schema }, 60, seed);
    const value = JSON.parse(text);
    assert.deepEqual(Object.keys(value).sort(), ["age", "mood"], text);
    assert.ok(["happy", "sad"].includes(value.mood) && Number.isInteger(value.age), text);
  }
  const yes = await answer({ type: "gbnf", grammar: 'root ::= "yes" | "no"' }, 20);
  assert.ok(["yes", "no"].includes(yes.text), yes.text);
  assert.equal(yes.done.type === "done" && yes.done.finish_reason, "stop");
  for (
    const [constraint, message] of [
      [
        { type: "json_schema", schema: { type: "object", patternProperties: { a: {} } } },
        /^The JSON Schema cannot be enforced: .*patternProperties/,
      ],
      [{ type: "gbnf", grammar: "root ::= (" }, /^The GBNF grammar cannot be used: /],
    ] as const
  ) {
    const [bad] = await collect(service.infer(chat("hi", { constraint }), never()));
    assert.equal(bad.type, "error");
    if (bad.type === "error") {
      assert.equal(bad.code, "invalid_request");
      assert.match(bad.message, message);
    }
  }
});
