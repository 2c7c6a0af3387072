import assert from "node:assert/strict";
import { createNodeApp } from "./app.ts";
import { readSse } from "./sse.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";

const post = (body: unknown) =>
  new Request("http://localhost/v1/completions", { method: "POST", body: JSON.stringify(body) });

Deno.test("completions: text_completion with text, finish_reason and usage", async () => {
  const service = fakeService();
  const res = await createNodeApp({ service }).fetch(
    post({ model: "tiny", prompt: ["Say"], max_tokens: 3 }),
  );
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.object, "text_completion");
  assert.match(body.id, /^cmpl-/);
  assert.deepEqual(body.choices, [{
    text: "Hello, world",
    index: 0,
    logprobs: null,
    finish_reason: "stop",
  }]);
  assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
  assert.equal(service.calls[0].req.prompt, "Say");
  assert.equal(service.calls[0].req.params.max_tokens, 3);
});

Deno.test("completions stream: text chunks, a held-back tail, finish chunk, usage, [DONE]", async () => {
  const events = tokens("a", "", "b");
  const done = events.at(-1)!;
  if (done.type === "done") done.tail = "c";
  const service = fakeService({ reply: () => events });
  const res = await createNodeApp({ service }).fetch(
    post({ prompt: "x", stream: true, stream_options: { include_usage: true } }),
  );
  const frames: string[] = [];
  for await (const f of readSse(res.body!)) frames.push(f);
  assert.equal(frames.at(-1), "[DONE]");
  const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
  assert.deepEqual(chunks.map((c) => c.choices[0]?.text), ["a", "b", "c", "", undefined]);
  assert.equal(chunks[3].choices[0].finish_reason, "stop");
  assert.equal(chunks[4].usage.total_tokens, 10);
  assert.ok(chunks.every((c) => c.object === "text_completion"));
});

Deno.test("completions logprobs: parallel arrays with text offsets", async () => {
  const service = fakeService({
    reply: () => [
      {
        type: "token",
        text: "Hi",
        id: 1,
        token: "Hi",
        logprob: -0.1,
        top_logprobs: [{ token: "Hi", logprob: -0.1 }],
      },
      {
        type: "token",
        text: " you",
        id: 2,
        token: " you",
        logprob: -0.2,
        top_logprobs: [{ token: " you", logprob: -0.2 }],
      },
      ...tokens().slice(-1),
    ],
  });
  const body = await (await createNodeApp({ service }).fetch(post({ prompt: "x", logprobs: 1 })))
    .json();
  assert.deepEqual(body.choices[0].logprobs, {
    tokens: ["Hi", " you"],
    token_logprobs: [-0.1, -0.2],
    top_logprobs: [{ Hi: -0.1 }, { " you": -0.2 }],
    text_offset: [0, 2],
  });
  assert.deepEqual(service.calls[0].req.params.top_logprobs, 1);
});

Deno.test("completions: unsupported or bad fields are 400s naming them", async () => {
  const app = createNodeApp({ service: fakeService() });
  for (
    const [body, param] of [
      [{}, "prompt"],
      [{ prompt: ["a", "b"] }, "prompt"],
      [{ prompt: "a", echo: true }, "echo"],
      [{ prompt: "a", suffix: "z" }, "suffix"],
      [{ prompt: "a", best_of: 3 }, "best_of"],
      [{ prompt: "a", logprobs: 9 }, "logprobs"],
      [{ prompt: "a", top_p: 2 }, "top_p"],
      [{ prompt: "a", max_tokens: "x" }, "max_tokens"],
      [{ prompt: "a", stop: 5 }, "stop"],
      [{ prompt: "a", stop: ["a", "b", "c", "d", "e"] }, "stop"],
      [{ prompt: "a", n: 9 }, "n"],
      [{ prompt: "a", logit_bias: { "1": 500 } }, "logit_bias"],
    ] as const
  ) {
    const res = await app.fetch(post(body));
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((await res.json()).error.param, param);
  }
});

Deno.test("completions n: a choice per run with its index, whole and streamed", async () => {
  const service = fakeService({ reply: (req) => tokens("s", String(req.params.seed)) });
  const app = createNodeApp({ service });
  const res = await app.fetch(post({ prompt: "a", n: 2, seed: 5, logit_bias: { "3": -100 } }));
  const body = await res.json();
  assert.deepEqual(
    body.choices.map((c: { index: number; text: string }) => [c.index, c.text]),
    [[0, "s5"], [1, "s6"]],
  );
  assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 });
  assert.deepEqual(service.calls[0].req.params.logit_bias, { "3": -100 });
  const streamed = await app.fetch(post({
    prompt: "a",
    n: 2,
    seed: 5,
    stream: true,
    stream_options: { include_usage: true },
  }));
  const frames: string[] = [];
  for await (const data of readSse(streamed.body!)) frames.push(data);
  assert.equal(frames.at(-1), "[DONE]");
  const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
  assert.deepEqual(chunks.at(-1).usage, {
    prompt_tokens: 7,
    completion_tokens: 4,
    total_tokens: 11,
  });
  for (const i of [0, 1]) {
    const own = chunks.filter((c) => c.choices[0]?.index === i);
    assert.equal(own.map((c) => c.choices[0].text).join(""), `s${5 + i}`);
    assert.equal(own.at(-1).choices[0].finish_reason, "stop");
  }
});
