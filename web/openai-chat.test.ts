import assert from "node:assert/strict";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService, type GenerationEnd, ServiceError } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { readSse } from "./sse.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { eventually } from "../tests/support/poll.ts";

const post = (body: unknown, init: RequestInit = {}) =>
  new Request("http://localhost/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
const hello = { model: "tiny", messages: [{ role: "user", content: "hi" }] };

async function sse(res: Response): Promise<string[]> {
  const out: string[] = [];
  for await (const data of readSse(res.body!)) out.push(data);
  return out;
}

Deno.test("non-stream: a chat.completion with the joined text and usage", async () => {
  const service = fakeService();
  const res = await createNodeApp({ service }).fetch(post(hello));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.object, "chat.completion");
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(body.model, "tiny");
  assert.deepEqual(body.choices, [{
    index: 0,
    message: { role: "assistant", content: "Hello, world", refusal: null },
    logprobs: null,
    finish_reason: "stop",
  }]);
  assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
});

Deno.test("params: OpenAI defaults fill what is left out; llama.cpp extras and aliases pass", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  await app.fetch(post({ messages: [{ role: "user", content: "hi" }], stop: "END" }));
  assert.equal(service.calls[0].req.model, "tiny", "no model: the first one offered");
  assert.deepEqual(service.calls[0].req.params, {
    temperature: 1,
    top_p: 1,
    top_k: 0,
    min_p: 0,
    repeat_penalty: 1,
    presence_penalty: 0,
    frequency_penalty: 0,
    stop: ["END"],
  });
  await app.fetch(post({
    ...hello,
    max_completion_tokens: 9,
    temperature: 0,
    top_k: 5,
    min_p: 0.1,
    repeat_penalty: 1.1,
    seed: 42,
    stop: ["a", "b"],
    logprobs: true,
    top_logprobs: 2,
  }));
  const p = service.calls[1].req.params;
  assert.equal(p.max_tokens, 9);
  assert.equal(p.temperature, 0);
  assert.equal(p.top_k, 5);
  assert.equal(p.min_p, 0.1);
  assert.equal(p.repeat_penalty, 1.1);
  assert.equal(p.seed, 42);
  assert.deepEqual(p.stop, ["a", "b"]);
  assert.equal(p.logprobs, true);
  assert.equal(p.top_logprobs, 2);
  // developer is OpenAI's new name for system.
  await app.fetch(
    post({
      messages: [{ role: "developer", content: "be nice" }, {
        role: "user",
        content: [{ type: "text", text: "a" }, { type: "text", text: "b" }],
      }],
    }),
  );
  assert.deepEqual(service.calls[2].req.messages?.map((m) => [m.role, m.content]), [
    ["system", "be nice"],
    ["user", "ab"],
  ]);
});

Deno.test("stream: role chunk, content deltas, finish_reason, usage chunk, [DONE]", async () => {
  const app = createNodeApp({ service: fakeService() });
  const res = await app.fetch(
    post({ ...hello, stream: true, stream_options: { include_usage: true } }),
  );
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
  const frames = await sse(res);
  assert.equal(frames.at(-1), "[DONE]");
  const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  const text = chunks.slice(1).map((c) => c.choices[0]?.delta.content ?? "").join("");
  assert.equal(text, "Hello, world");
  const final = chunks.at(-2);
  assert.equal(final.choices[0].finish_reason, "stop");
  assert.deepEqual(final.choices[0].delta, {});
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, {
    prompt_tokens: 7,
    completion_tokens: 3,
    total_tokens: 10,
  });

  const plain = (await sse(await app.fetch(post({ ...hello, stream: true })))).slice(0, -1);
  assert.ok(plain.every((f) => !("usage" in JSON.parse(f))), "no usage unless asked");
  assert.equal(JSON.parse(plain.at(-1)!).choices[0].finish_reason, "stop");
});

Deno.test("logprobs: OpenAI's content entries with bytes and top_logprobs", async () => {
  const service = fakeService({
    reply: () => [
      {
        type: "token",
        text: "Hi",
        id: 3,
        token: "Hi",
        logprob: -0.5,
        top_logprobs: [{ token: "Hi", logprob: -0.5 }, { token: "Yo", logprob: -1.5 }],
      },
      ...tokens().slice(-1),
    ],
  });
  const app = createNodeApp({ service });
  const body = await (await app.fetch(post({ ...hello, logprobs: true, top_logprobs: 2 }))).json();
  assert.deepEqual(body.choices[0].logprobs, {
    content: [{
      token: "Hi",
      logprob: -0.5,
      bytes: [72, 105],
      top_logprobs: [
        { token: "Hi", logprob: -0.5, bytes: [72, 105] },
        { token: "Yo", logprob: -1.5, bytes: [89, 111] },
      ],
    }],
    refusal: null,
  });
  const frames = await sse(await app.fetch(post({ ...hello, logprobs: true, stream: true })));
  assert.equal(JSON.parse(frames[1]).choices[0].logprobs.content[0].logprob, -0.5);
  assert.equal(JSON.parse(frames[1]).choices[0].logprobs.refusal, null);
});

Deno.test("bad requests: 400 invalid_request_error naming the field", async () => {
  const app = createNodeApp({ service: fakeService() });
  const cases: [unknown, string | undefined, RegExp][] = [
    ["{not json", undefined, /not valid JSON/],
    [[1, 2], undefined, /must be a JSON object/],
    [{ model: "tiny" }, "messages", /messages is required/],
    [{ ...hello, n: 9 }, "n", /n must be an integer from 1 to 8; got 9/],
    [{ ...hello, temperature: "hot" }, "temperature", /temperature must be a number from 0 to 2/],
    [{ ...hello, max_tokens: 0 }, "max_tokens", /max_tokens must be an integer ≥ 1/],
    [{ ...hello, stop: [1] }, "stop", /stop must be a string or an array of strings/],
    [{ ...hello, top_logprobs: 2 }, "top_logprobs", /needs logprobs/],
    [
      { ...hello, stream_options: { include_usage: "yes" } },
      "stream_options.include_usage",
      /boolean/,
    ],
    [{ messages: [{ role: "wizard", content: "x" }] }, "messages[0].role", /must be one of/],
    [
      { messages: [{ role: "user", content: [{ type: "image_url" }] }] },
      "messages[0].content[0]",
      /text part/,
    ],
  ];
  for (const [body, param, message] of cases) {
    const res = await app.fetch(post(typeof body === "string" ? body : JSON.stringify(body)));
    assert.equal(res.status, 400, JSON.stringify(body));
    const { error } = await res.json();
    assert.equal(error.type, "invalid_request_error");
    assert.match(error.message, message);
    assert.equal(error.param, param);
  }
});

Deno.test("OpenAI's limits: each bad field a 400 naming it, before the service is asked", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const user = [{ role: "user", content: "hi" }];
  const cases: [Record<string, unknown>, string, RegExp][] = [
    // Finding 9 of issue 9: each of these reached a serving node.
    [{ logprobs: true, top_logprobs: 1000 }, "top_logprobs", /an integer from 0 to 20; got 1000/],
    [{ max_tokens: "x" }, "max_tokens", /max_tokens must be an integer ≥ 1; got "x"/],
    [{ stop: 5 }, "stop", /stop must be a string or an array of strings/],
    [{ logprobs: true, top_logprobs: 2.5 }, "top_logprobs", /integer from 0 to 20/],
    [{ logprobs: "yes" }, "logprobs", /logprobs must be a boolean/],
    [{ max_completion_tokens: 8, max_tokens: "x" }, "max_tokens", /max_tokens must be an integer/],
    [{ max_completion_tokens: -1 }, "max_completion_tokens", /integer ≥ 1/],
    [{ max_tokens: 1.5 }, "max_tokens", /integer ≥ 1/],
    [{ stop: ["a", "b", "c", "d", "e"] }, "stop", /at most 4 strings/],
    [{ n: 0 }, "n", /n must be an integer from 1 to 8; got 0/],
    [{ n: "2" }, "n", /n must be an integer/],
    [{ temperature: 2.5 }, "temperature", /from 0 to 2/],
    [{ top_p: 1.5 }, "top_p", /from 0 to 1/],
    [{ presence_penalty: -3 }, "presence_penalty", /from -2 to 2/],
    [{ seed: "s" }, "seed", /seed must be an integer/],
    [{ logit_bias: { "50256": -101 } }, "logit_bias", /\["50256"\] .* from -100 to 100; got -101/],
    [{ logit_bias: { "a": 1 } }, "logit_bias", /keys must be token ids/],
    [{ logit_bias: { "-1": 1 } }, "logit_bias", /keys must be token ids/],
    [{ logit_bias: [1] }, "logit_bias", /must be an object/],
    [{ response_format: { type: "xml" } }, "response_format", /must be one of text, json_object/],
    [{ response_format: "json" }, "response_format", /must be an object/],
    [{ response_format: { type: "json_schema" } }, "response_format", /json_schema must be/],
    [
      { response_format: { type: "json_schema", json_schema: { name: "a b" } } },
      "response_format",
      /name must match/,
    ],
    [
      { response_format: { type: "json_schema", json_schema: { name: "a", schema: [] } } },
      "response_format",
      /schema must be a JSON Schema object/,
    ],
    [
      { response_format: { type: "json_object" }, grammar: "root ::= x" },
      "grammar",
      /response_format and grammar cannot be used together/,
    ],
    [{ json_schema: true }, "json_schema", /json_schema must be a JSON Schema object/],
    [{ grammar: 5 }, "grammar", /grammar must be a string/],
    [{ messages: "hi" }, "messages", /non-empty array/],
    [{ messages: [] }, "messages", /non-empty array/],
    [{ messages: ["hi"] }, "messages[0]", /must be an object/],
    [{ messages: [{ role: "user" }] }, "messages[0].content", /string or an array/],
    [{ messages: [{ role: "user", content: "a", name: 5 }] }, "messages[0].name", /a string/],
    [
      { messages: [{ role: "tool", content: "a", tool_call_id: {} }] },
      "messages[0].tool_call_id",
      /a string/,
    ],
    [{ max_tokens: "x".repeat(100_000) }, "max_tokens", /got "x{59}…$/],
  ];
  for (const [fields, param, message] of cases) {
    const res = await app.fetch(post({ model: "tiny", messages: user, ...fields }));
    assert.equal(res.status, 400, JSON.stringify(fields).slice(0, 80));
    const { error } = await res.json();
    assert.equal(error.type, "invalid_request_error");
    assert.equal(error.param, param);
    assert.match(error.message, message);
  }
  assert.equal(service.calls.length, 0);

  // Within the limits, all of it passes, and n: 1 is fine.
  const ok = await app.fetch(post({
    ...hello,
    n: 1,
    logprobs: true,
    top_logprobs: 20,
    stop: ["a", "b", "c", "d"],
    max_tokens: 5,
    logit_bias: {},
    response_format: { type: "text" },
  }));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  assert.deepEqual(service.calls[0].req.params.stop, ["a", "b", "c", "d"]);
  assert.equal(service.calls[0].req.params.top_logprobs, 20);
});

Deno.test("messages: only the fields a template reads go on, each of its type", async () => {
  const service = fakeService();
  await createNodeApp({ service }).fetch(post({
    messages: [
      { role: "developer", content: "be brief", padding: "z".repeat(1000) },
      { role: "user", content: [{ type: "text", text: "hi" }], name: "ann" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
      },
      { role: "tool", content: "42", tool_call_id: "c1", extra: { deep: [1, 2, 3] } },
    ],
  }));
  assert.deepEqual(service.calls[0].req.messages, [
    { role: "system", content: "be brief" },
    { role: "user", content: "hi", name: "ann" },
    {
      role: "assistant",
      content: "",
      tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
    },
    { role: "tool", content: "42", tool_call_id: "c1" },
  ]);
});

Deno.test("service errors map to the documented statuses, as events or thrown", async () => {
  const cases = [
    ["mesh_denied", 403, "llm_auth"],
    ["model_not_found", 404, "invalid_request_error"],
    ["unavailable", 503, "unavailable_error"],
    ["context_length_exceeded", 400, "invalid_request_error"],
  ] as const;
  for (const [code, status, type] of cases) {
    for (const thrown of [false, true]) {
      const service = fakeService({
        reply: () =>
          thrown
            ? new ServiceError(code, `why: ${code}`)
            : [{ type: "error", code, message: `why: ${code}` }],
      });
      const res = await createNodeApp({ service }).fetch(post({ ...hello, stream: true }));
      assert.equal(res.status, status, code);
      const { error } = await res.json();
      assert.equal(error.type, type);
      assert.equal(error.code, code);
      assert.equal(
        error.message,
        code === "mesh_denied"
          ? "Relay mesh denied this node — check your relay membership."
          : `why: ${code}`,
      );
    }
  }
});

Deno.test("an error after streaming began arrives as an SSE error chunk", async () => {
  const service = fakeService({
    reply: () => [{ type: "token", text: "a", id: 1 }, {
      type: "error",
      code: "unavailable",
      message: "peer lost",
    }],
  });
  const frames = await sse(
    await createNodeApp({ service }).fetch(post({ ...hello, stream: true })),
  );
  assert.equal(JSON.parse(frames.at(-1)!).error.message, "peer lost");
  assert.ok(!frames.includes("[DONE]"));
});

Deno.test("client disconnect: dropping the stream or aborting the request stops the generation", async () => {
  const engine = await createCpuEngine({
    path: STORIES,
    ctxSize: 512,
  });
  const ends: GenerationEnd[] = [];
  const service = createLocalService({ engine, id: "stories260K" }, {
    onGenerationEnd: (e) => ends.push(e),
  });
  const app = createNodeApp({ service });
  const req = { model: "stories260K", prompt: "Once", max_tokens: 400, temperature: 0 };

  const res = await app.fetch(
    new Request("http://localhost/v1/completions", {
      method: "POST",
      body: JSON.stringify({ ...req, stream: true }),
    }),
  );
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(ends.length, 1);
  assert.equal(ends[0].finishReason, "cancelled");
  assert.ok(ends[0].completionTokens < 400, `${ends[0].completionTokens} tokens`);

  const client = new AbortController();
  const pending = app.fetch(
    new Request("http://localhost/v1/completions", {
      method: "POST",
      body: JSON.stringify(req),
      signal: client.signal,
    }),
  );
  // The client gives up 5 ms into its request: the scenario, not a wait for something.
  setTimeout(() => client.abort(), 5);
  await pending;
  assert.equal(ends.length, 2);
  assert.equal(ends[1].finishReason, "cancelled");
  assert.ok(ends[1].completionTokens < 400, `${ends[1].completionTokens} tokens`);
  assert.deepEqual(service.load(), { active: 0, queued: 0 });
});

/** A reply that says which seed ran it: "s42" for seed 42. */
const bySeed = (req: { params: { seed?: number } }) => tokens("s", String(req.params.seed));

Deno.test("n: choices 0..n-1, each its own run (seed + i), usage counts the prompt once", async () => {
  const service = fakeService({ reply: bySeed });
  const res = await createNodeApp({ service }).fetch(post({ ...hello, n: 3, seed: 42 }));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(
    body.choices.map((c: { index: number; message: { content: string } }) => [
      c.index,
      c.message.content,
    ]),
    [[0, "s42"], [1, "s43"], [2, "s44"]],
  );
  assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 6, total_tokens: 13 });
  assert.deepEqual(service.calls.map((c) => c.req.params.seed), [42, 43, 44]);
  // Without a seed each run draws its own.
  await createNodeApp({ service }).fetch(post({ ...hello, n: 2 }));
  assert.deepEqual(service.calls.slice(3).map((c) => c.req.params.seed), [undefined, undefined]);
});

Deno.test("n streamed: every chunk carries its choice's index; one usage chunk sums them", async () => {
  const service = fakeService({ reply: bySeed, tokenDelayMs: 1 });
  const res = await createNodeApp({ service }).fetch(
    post({ ...hello, n: 2, seed: 7, stream: true, stream_options: { include_usage: true } }),
  );
  const frames = await sse(res);
  assert.equal(frames.at(-1), "[DONE]");
  const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, { prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 });
  const per = [0, 1].map((i) => chunks.filter((c) => c.choices[0]?.index === i));
  for (const [i, own] of per.entries()) {
    assert.deepEqual(own[0].choices[0].delta, { role: "assistant", content: "" });
    assert.equal(own.map((c) => c.choices[0].delta.content ?? "").join(""), `s${7 + i}`);
    assert.equal(own.at(-1).choices[0].finish_reason, "stop");
    assert.equal(own.filter((c) => c.choices[0].finish_reason !== null).length, 1);
    for (const c of own) assert.equal(c.usage, null);
  }
  assert.equal(per[0].length + per[1].length + 1, chunks.length);
});

Deno.test("n: one choice refused is the answer, and the others are cancelled", async () => {
  const service = fakeService({
    reply: (req) =>
      req.params.seed === 2 ? new ServiceError("invalid_request", "no such token") : bySeed(req),
    tokenDelayMs: 5,
  });
  const res = await createNodeApp({ service }).fetch(post({ ...hello, n: 3, seed: 1 }));
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /no such token/);
  const others = service.calls.filter((c) => c.req.params.seed !== 2);
  assert.equal(others.length, 2);
  await eventually(() => others.every((c) => c.signal.aborted), {
    what: "the other choices were never cancelled",
  });
});

Deno.test("logit_bias and n reach a real engine: a banned greedy token never appears", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 128 });
  const app = createNodeApp({ service: createLocalService({ engine, id: "stories260K" }) });
  const ask = async (extra: Record<string, unknown>) => {
    const res = await app.fetch(post({
      model: "stories260K",
      messages: [{ role: "user", content: "Once upon a time" }],
      temperature: 0,
      max_tokens: 10,
      logprobs: true,
      ...extra,
    }));
    assert.equal(res.status, 200);
    return (await res.json()).choices as {
      message: { content: string };
      logprobs: { content: { token: string }[] };
    }[];
  };
  const [greedy] = await ask({});
  const first = greedy.logprobs.content[0].token;
  // Every token whose piece that is (a byte token may spell it too), as logprobs show pieces.
  const piece = (id: number) => {
    const d = engine.tokenizer.createDecoder();
    return d.push(id) + d.flush();
  };
  const ids = [...Array(engine.tokenizer.vocabSize).keys()].filter((i) => piece(i) === first);
  assert.ok(ids.length > 0);
  const bias = Object.fromEntries(ids.map((id) => [id, -100]));
  const banned = await ask({ logit_bias: bias, n: 2 });
  assert.equal(banned.length, 2);
  for (const choice of banned) {
    assert.ok(choice.logprobs.content.every((t) => t.token !== first), choice.message.content);
  }
  assert.equal(banned[0].message.content, banned[1].message.content, "greedy: the same twice");
});

Deno.test("n streamed: a client that drops the stream stops every choice", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 512 });
  const ends: GenerationEnd[] = [];
  const service = createLocalService({ engine, id: "stories260K" }, {
    onGenerationEnd: (e) => ends.push(e),
  });
  const res = await createNodeApp({ service }).fetch(post({
    model: "stories260K",
    messages: [{ role: "user", content: "Once" }],
    max_tokens: 400,
    n: 3,
    stream: true,
  }));
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  await eventually(() => ends.length === 3, { what: "not every choice ended" });
  for (const end of ends) {
    assert.equal(end.finishReason, "cancelled");
    assert.ok(end.completionTokens < 400, `${end.completionTokens} tokens`);
  }
  assert.deepEqual(service.load(), { active: 0, queued: 0 });
});

Deno.test("response_format, llama.cpp's json_schema and grammar become the request's constraint", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const schema = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };
  const bodies = [
    { response_format: { type: "text" } },
    { response_format: { type: "json_object" } },
    { response_format: { type: "json_schema", json_schema: { name: "r", schema, strict: true } } },
    { response_format: { type: "json_schema", json_schema: { name: "r" } } },
    { json_schema: schema },
    { grammar: 'root ::= "yes" | "no"' },
    { grammar: "" },
  ];
  for (const body of bodies) {
    const res = await app.fetch(post({ ...hello, ...body }));
    assert.equal(res.status, 200, JSON.stringify(body));
    await res.body?.cancel();
  }
  assert.deepEqual(service.calls.map((c) => c.req.params.constraint), [
    undefined,
    { type: "json_object" },
    { type: "json_schema", schema, name: "r", strict: true },
    { type: "json_object" },
    { type: "json_schema", schema },
    { type: "gbnf", grammar: 'root ::= "yes" | "no"' },
    undefined,
  ]);
  // The completions route takes them too.
  await app.fetch(
    new Request("http://localhost/v1/completions", {
      method: "POST",
      body: JSON.stringify({ prompt: "x", json_schema: schema }),
    }),
  );
  assert.deepEqual(service.calls.at(-1)!.req.params.constraint, { type: "json_schema", schema });
});

Deno.test("response_format on a real engine: every choice parses and matches its schema", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 256 });
  const app = createNodeApp({ service: createLocalService({ engine, id: "stories260K" }) });
  const schema = {
    type: "object",
    properties: { mood: { enum: ["happy", "sad"] }, n: { type: "integer" } },
    required: ["mood", "n"],
    additionalProperties: false,
  };
  const body = {
    model: "stories260K",
    messages: [{ role: "user", content: "Tell me" }],
    max_tokens: 60,
    seed: 4,
    n: 2,
    response_format: { type: "json_schema", json_schema: { name: "m", schema, strict: true } },
  };
  const check = (text: string) => {
    const value = JSON.parse(text);
    assert.deepEqual(Object.keys(value).sort(), ["mood", "n"], text);
    assert.ok(["happy", "sad"].includes(value.mood) && Number.isInteger(value.n), text);
  };
  const whole = await (await app.fetch(post(body))).json();
  assert.equal(whole.choices.length, 2);
  for (const c of whole.choices) check(c.message.content);
  const frames = await sse(await app.fetch(post({ ...body, stream: true })));
  const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
  for (const i of [0, 1]) {
    check(
      chunks.filter((c) => c.choices[0]?.index === i)
        .map((c) => c.choices[0].delta.content ?? "").join(""),
    );
  }
  const bad = await app.fetch(post({
    ...body,
    response_format: { type: "json_schema", json_schema: { name: "m", schema: { not: {} } } },
  }));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /JSON Schema cannot be enforced: .*not/);
});
