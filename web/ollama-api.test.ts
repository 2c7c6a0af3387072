import assert from "node:assert/strict";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService, ServiceError } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { OLLAMA_VERSION } from "./ollama-api.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const post = (path: string, body: unknown) =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
const get = (path: string) => new Request(`http://localhost${path}`);
const chat = { model: "tiny", messages: [{ role: "user", content: "hi" }] };

async function ndjson(res: Response): Promise<Record<string, unknown>[]> {
  assert.equal(res.headers.get("content-type"), "application/x-ndjson");
  const text = await res.text();
  assert.ok(text.endsWith("\n"));
  return text.trimEnd().split("\n").map((line) => JSON.parse(line));
}

const DURATIONS = [
  "total_duration",
  "load_duration",
  "prompt_eval_duration",
  "eval_duration",
] as const;

function assertFinal(last: Record<string, unknown>, reason: string, evals: number) {
  assert.equal(last.done, true);
  assert.equal(last.done_reason, reason);
  assert.equal(last.prompt_eval_count, 7);
  assert.equal(last.eval_count, evals);
  for (const d of DURATIONS) assert.ok(Number.isInteger(last[d]) && last[d] as number >= 0, d);
  assert.equal(last.prompt_eval_duration, 1_000_000, "1 ms, in nanoseconds");
  assert.ok(!Number.isNaN(Date.parse(last.created_at as string)));
}

Deno.test("ollama: /api/version and /api/tags list every model offered", async () => {
  const app = createNodeApp({
    service: fakeService({ models: [{ id: "a", name: "A" }, { id: "b", name: "B" }] }),
  });
  assert.deepEqual(await (await app.fetch(get("/api/version"))).json(), {
    version: OLLAMA_VERSION,
  });
  const { models } = await (await app.fetch(get("/api/tags"))).json();
  assert.deepEqual(models.map((m: { name: string; model: string }) => [m.name, m.model]), [
    ["a", "a"],
    ["b", "b"],
  ]);
  for (const m of models) {
    assert.equal(typeof m.modified_at, "string");
    assert.equal(typeof m.size, "number");
    assert.equal(m.details.format, "gguf");
  }
});

Deno.test("ollama: /api/chat streams NDJSON lines, then the done line with counts in ns", async () => {
  const app = createNodeApp({ service: fakeService() });
  const res = await app.fetch(post("/api/chat", chat));
  assert.equal(res.status, 200);
  const lines = await ndjson(res);
  assert.deepEqual(
    lines.slice(0, -1).map((l) => [l.model, l.message, l.done]),
    ["Hello", ",", " world"].map((c) => ["tiny", { role: "assistant", content: c }, false]),
  );
  const last = lines.at(-1)!;
  assert.deepEqual(last.message, { role: "assistant", content: "" });
  assertFinal(last, "stop", 3);
});

Deno.test("ollama: stream false answers one object, for chat and generate", async () => {
  const app = createNodeApp({ service: fakeService() });
  const c = await (await app.fetch(post("/api/chat", { ...chat, stream: false }))).json();
  assert.deepEqual(c.message, { role: "assistant", content: "Hello, world" });
  assertFinal(c, "stop", 3);
  const g = await (await app.fetch(
    post("/api/generate", { model: "tiny", prompt: "hi", stream: false }),
  )).json();
  assert.equal(g.response, "Hello, world");
  assert.equal(g.model, "tiny");
  assertFinal(g, "stop", 3);
});

Deno.test("ollama: /api/generate streams `response` lines; raw, system and a loading call", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const lines = await ndjson(
    await app.fetch(post("/api/generate", {
      model: "tiny:latest",
      prompt: "Why?",
      system: "Be brief.",
    })),
  );
  assert.deepEqual(lines.slice(0, -1).map((l) => l.response), ["Hello", ",", " world"]);
  assertFinal(lines.at(-1)!, "stop", 3);
  assert.equal(service.calls[0].req.model, "tiny", ":latest is the model itself");
  assert.deepEqual(service.calls[0].req.messages, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Why?" },
  ]);
  await (await app.fetch(post("/api/generate", { model: "tiny", prompt: "x", raw: true }))).text();
  assert.equal(service.calls[1].req.prompt, "x");
  assert.equal(service.calls[1].req.messages, undefined);
  const load = await (await app.fetch(post("/api/generate", { model: "tiny" }))).json();
  assert.deepEqual([load.done, load.done_reason, load.response], [true, "load", ""]);
  const chatLoad = await (await app.fetch(post("/api/chat", { model: "tiny", messages: [] })))
    .json();
  assert.deepEqual([chatLoad.done, chatLoad.done_reason, chatLoad.message.content], [
    true,
    "load",
    "",
  ]);
  const unknown = await app.fetch(post("/api/generate", { model: "nope" }));
  assert.equal(unknown.status, 404);
  assert.equal(service.calls.length, 2, "loading runs nothing");
});

Deno.test("ollama: options map to params over Ollama's defaults; format becomes a constraint", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const ask = async (body: Record<string, unknown>) => {
    const res = await app.fetch(post("/api/chat", { ...chat, stream: false, ...body }));
    assert.equal(res.status, 200, JSON.stringify(body));
    await res.body?.cancel();
    return service.calls.at(-1)!.req.params;
  };
  assert.deepEqual(await ask({}), {
    temperature: 0.8,
    top_k: 40,
    top_p: 0.9,
    min_p: 0,
    repeat_penalty: 1.1,
    presence_penalty: 0,
    frequency_penalty: 0,
  });
  const p = await ask({
    options: {
      temperature: 0,
      top_p: 0.5,
      top_k: 3,
      min_p: 0.1,
      num_predict: 12,
      stop: ["END", ""],
      seed: 9,
      repeat_penalty: 1.2,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      // How Ollama runs a model, never what it answers: accepted, ignored.
      num_ctx: 4096,
      num_gpu: 99,
      num_thread: 8,
      // Off values of steps this node lacks.
      repeat_last_n: 64,
      mirostat: 0,
      typical_p: 1,
    },
    keep_alive: "5m",
  });
  assert.deepEqual(p, {
    temperature: 0,
    top_p: 0.5,
    top_k: 3,
    min_p: 0.1,
    max_tokens: 12,
    stop: ["END"],
    seed: 9,
    repeat_penalty: 1.2,
    presence_penalty: 0.5,
    frequency_penalty: 0.25,
  });
  assert.equal((await ask({ options: { num_predict: -1 } })).max_tokens, undefined);
  assert.deepEqual((await ask({ format: "json" })).constraint, { type: "json_object" });
  const schema = { type: "object", properties: { a: { type: "string" } } };
  assert.deepEqual((await ask({ format: schema })).constraint, { type: "json_schema", schema });
  assert.equal((await ask({ format: "" })).constraint, undefined);
});

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

Deno.test("ollama: /api/chat takes tools and answers message.tool_calls, streamed and not", async () => {
  const call = {
    type: "tool_call" as const,
    index: 0,
    id: "call_1",
    name: "get_weather",
    arguments: '{"city":"Paris"}',
  };
  const [think, done] = [tokens("")[0], tokens("")[1]];
  const service = fakeService({
    reply: () => [think, call, { ...done, finish_reason: "tool_calls" } as typeof done],
  });
  const app = createNodeApp({ service });
  const history = [
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: "",
      tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
    },
    { role: "tool", content: "Sunny", tool_name: "get_weather" },
    { role: "user", content: "And in Rome?" },
  ];
  const body = { model: "tiny", messages: history, tools: [weather], stream: false };
  const whole = await (await app.fetch(post("/api/chat", body))).json();
  assert.deepEqual(whole.message.tool_calls, [
    { function: { name: "get_weather", arguments: { city: "Paris" } } },
  ]);
  assert.equal(whole.done_reason, "stop", "Ollama ends an answer of calls with stop");
  // The request reached the service as OpenAI-style tools, the past call with its arguments.
  const req = service.calls[0].req;
  assert.equal(req.tools?.[0].function.name, "get_weather");
  const past = req.messages![1].tool_calls![0] as { function: { arguments: string } };
  assert.equal(past.function.arguments, '{"city":"Paris"}');
  const lines = await ndjson(await app.fetch(post("/api/chat", { ...body, stream: true })));
  const withCall = lines.filter((l) => (l.message as { tool_calls?: unknown })?.tool_calls);
  assert.equal(withCall.length, 1);
  assert.equal(lines.at(-1)!.done, true);
});

Deno.test("ollama: what a node cannot honour is a 400 in Ollama's error shape, naming it", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["/api/chat", { messages: [] }, /model is required/],
    ["/api/chat", { model: "tiny" }, /messages must be an array/],
    ["/api/chat", { ...chat, options: { mirostat: 2 } }, /options\.mirostat is not supported/],
    ["/api/chat", { ...chat, options: { repeat_last_n: 8 } }, /options\.repeat_last_n/],
    ["/api/chat", { ...chat, options: { warp: 1 } }, /options\.warp is not an option/],
    ["/api/chat", { ...chat, options: { temperature: "hot" } }, /options\.temperature/],
    ["/api/chat", { ...chat, options: { num_predict: 0 } }, /num_predict must be -1, -2/],
    ["/api/chat", { ...chat, format: "xml" }, /format must be "json" or a JSON Schema/],
    ["/api/chat", { ...chat, think: true }, /think is not supported/],
    ["/api/chat", { ...chat, tools: [{ type: "function" }] }, /tools\[0\]/],
    [
      "/api/generate",
      { model: "tiny", prompt: "x", tools: [weather] },
      /tools are taken by \/api\/chat/,
    ],
    [
      "/api/chat",
      { model: "tiny", messages: [{ role: "user", content: "x", images: ["AAAA"] }] },
      /images are not supported/,
    ],
    ["/api/chat", { model: "tiny", messages: [{ role: "bot", content: "x" }] }, /role must be/],
    ["/api/generate", { model: "tiny", prompt: "x", suffix: "y" }, /suffix is not supported/],
    [
      "/api/generate",
      { model: "tiny", prompt: "x", context: [1, 2] },
      /context .* use \/api\/chat/,
    ],
    ["/api/generate", { model: "tiny", prompt: 5 }, /prompt must be a string/],
  ];
  for (const [path, body, message] of cases) {
    const res = await app.fetch(post(path, body));
    assert.equal(res.status, 400, JSON.stringify(body));
    const answer = await res.json();
    assert.deepEqual(Object.keys(answer), ["error"]);
    assert.match(answer.error, message);
  }
  assert.equal(service.calls.length, 0);
  const bad = await app.fetch(post("/api/chat", "{oops"));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /not valid JSON/);
});

Deno.test("ollama: service errors keep their status; mid-stream one is an error line", async () => {
  const missing = createNodeApp({
    service: fakeService({
      reply: () => new ServiceError("model_not_found", "The model `x` is not offered"),
    }),
  });
  const res = await missing.fetch(post("/api/chat", chat));
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: "The model `x` is not offered" });
  const cut = createNodeApp({
    service: fakeService({
      reply: () => [{ type: "token", text: "a", id: 1 }, {
        type: "error",
        code: "unavailable",
        message: "peer lost",
      }],
    }),
  });
  const lines = await ndjson(await cut.fetch(post("/api/chat", chat)));
  assert.deepEqual(lines.at(-1), { error: "peer lost" });
});

Deno.test("ollama: /api/show describes the served model; an unknown one is 404", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 128 });
  const service = createLocalService({ engine, id: "stories260K" });
  const app = createNodeApp({ service, local: service.view() });
  const show = await (await app.fetch(post("/api/show", { model: "stories260K" }))).json();
  assert.equal(show.details.format, "gguf");
  assert.equal(show.details.family, "llama");
  assert.deepEqual(show.details.families, ["llama"]);
  assert.equal(show.model_info["general.architecture"], "llama");
  assert.equal(show.model_info["llama.context_length"], 128);
  assert.deepEqual(show.capabilities, ["completion"]);
  assert.equal(typeof show.template, "string");
  const legacy = await app.fetch(post("/api/show", { name: "stories260K:latest" }));
  assert.equal(legacy.status, 200, "Ollama's older `name` field");
  await legacy.body?.cancel();
  const unknown = await app.fetch(post("/api/show", { model: "llama3" }));
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), { error: "model 'llama3' not found" });
  const tags = await (await app.fetch(get("/api/tags"))).json();
  assert.equal(tags.models[0].details.family, "llama");
});

Deno.test("ollama: a real model answers /api/generate to num_predict, done_reason length", async () => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 128 });
  const app = createNodeApp({ service: createLocalService({ engine, id: "stories260K" }) });
  const body = {
    model: "stories260K",
    prompt: "Once upon a time",
    raw: true,
    options: { temperature: 0, num_predict: 6 },
  };
  const whole = await (await app.fetch(post("/api/generate", { ...body, stream: false }))).json();
  assert.equal(whole.done_reason, "length");
  assert.equal(whole.eval_count, 6);
  assert.ok(whole.response.length > 0);
  const lines = await ndjson(await app.fetch(post("/api/generate", body)));
  assert.equal(lines.slice(0, -1).map((l) => l.response).join(""), whole.response);
  assert.equal(lines.at(-1)!.eval_count, 6);
  const json = await (await app.fetch(post("/api/chat", {
    model: "stories260K",
    messages: [{ role: "user", content: "Tell me" }],
    format: "json",
    stream: false,
    options: { seed: 2, num_predict: 40 },
  }))).json();
  const value = JSON.parse(json.message.content);
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
});

Deno.test("ollama: its inference routes are not node commands; they take /v1's body limit", async () => {
  const app = createNodeApp({ service: fakeService(), browser: { origins: ["*"] } });
  const page = { origin: "http://app.example", "content-type": "application/json" };
  const asked = await app.fetch(
    new Request("http://localhost/api/chat", {
      method: "POST",
      headers: page,
      body: JSON.stringify({ ...chat, stream: false }),
    }),
  );
  assert.equal(asked.status, 200, "--allow-origin * reaches /api/chat as it reaches /v1");
  await asked.body?.cancel();
  const command = await app.fetch(
    new Request("http://localhost/api/node/stop", { method: "POST", headers: page }),
  );
  assert.equal(command.status, 403);
  await command.body?.cancel();
  // A 100 KiB conversation: over the node API's 64 KiB, within /v1's 8 MiB.
  const long = [{ role: "user", content: "x".repeat(100 * 1024) }];
  const big = await app.fetch(post("/api/chat", { model: "tiny", messages: long, stream: false }));
  assert.equal(big.status, 200);
  await big.body?.cancel();
});
