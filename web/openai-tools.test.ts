import assert from "node:assert/strict";
import type { InferEvent, ToolCallEvent } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { readSse } from "./sse.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";

const post = (body: unknown) =>
  new Request("http://localhost/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const user = [{ role: "user", content: "Weather in Paris?" }];
const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

const call = (index: number, name: string, args: string): ToolCallEvent => ({
  type: "tool_call",
  index,
  id: `call_${index}`,
  name,
  arguments: args,
});

/** Tokens, then calls, then a done whose finish_reason is tool_calls. */
function answer(texts: string[], calls: ToolCallEvent[]): InferEvent[] {
  const events = tokens(...texts);
  const done = events.pop()!;
  if (done.type === "done" && calls.length > 0) done.finish_reason = "tool_calls";
  return [...events, ...calls, done];
}

Deno.test("tools, tool_choice and parallel_tool_calls reach the service as given", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const res = await app.fetch(post({
    model: "tiny",
    messages: user,
    tools: [WEATHER, { type: "function", function: { name: "noop" } }],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    parallel_tool_calls: false,
  }));
  assert.equal(res.status, 200);
  const req = service.calls[0].req;
  assert.deepEqual(req.tools, [WEATHER, { type: "function", function: { name: "noop" } }]);
  assert.deepEqual(req.tool_choice, { type: "function", function: { name: "get_weather" } });
  assert.equal(req.parallel_tool_calls, false);
  // An empty tools list is no tools (and tool_choice without tools means nothing).
  await app.fetch(post({ model: "tiny", messages: user, tools: [], tool_choice: "auto" }));
  assert.equal(service.calls[1].req.tools, undefined);
  assert.equal(service.calls[1].req.tool_choice, undefined);
});

Deno.test("a history of calls and results: OpenAI's shapes, arguments as JSON text", async () => {
  const service = fakeService();
  await createNodeApp({ service }).fetch(post({
    model: "tiny",
    tools: [WEATHER],
    messages: [
      ...user,
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_a",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris"}' },
          },
          // Some clients send the arguments as an object: taken as its JSON.
          {
            id: "call_b",
            type: "function",
            function: { name: "get_weather", arguments: { city: "Rome" } },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_a", content: "21 C" },
      { role: "tool", tool_call_id: "call_b", content: [{ type: "text", text: "25 C" }] },
    ],
  }));
  assert.deepEqual(service.calls[0].req.messages!.slice(1), [
    {
      role: "assistant",
      content: "",
      tool_calls: [
        {
          id: "call_a",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        },
        {
          id: "call_b",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Rome"}' },
        },
      ],
    },
    { role: "tool", tool_call_id: "call_a", content: "21 C" },
    { role: "tool", tool_call_id: "call_b", content: "25 C" },
  ]);
});

Deno.test("bad tools and tool messages are 400s naming the field", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ tools: {} }, "tools", /must be an array/],
    [{ tools: Array(129).fill(WEATHER) }, "tools", /at most 128/],
    [{ tools: [{ type: "retrieval" }] }, "tools[0].type", /must be "function"/],
    [{ tools: [{ type: "function" }] }, "tools[0].function", /must be an object/],
    [
      { tools: [{ type: "function", function: { name: "a b" } }] },
      "tools[0].function.name",
      /\^\[a-zA-Z0-9_-\]/,
    ],
    [{ tools: [WEATHER, WEATHER] }, "tools[1].function.name", /given twice/],
    [
      { tools: [{ type: "function", function: { name: "f", parameters: { type: "array" } } }] },
      "tools[0].function.parameters",
      /JSON Schema of type "object"/,
    ],
    [
      { tools: [{ type: "function", function: { name: "f", parameters: nest(70) } }] },
      "tools[0].function.parameters",
      /nested more than 64/,
    ],
    [
      { tools: [{ type: "function", function: { name: "f", description: 3 } }] },
      "tools[0].function.description",
      /a string/,
    ],
    [
      { tools: [WEATHER], tool_choice: "always" },
      "tool_choice",
      /must be "none", "auto", "required"/,
    ],
    [{ tool_choice: "required" }, "tool_choice", /needs tools/],
    [
      { tools: [WEATHER], tool_choice: { type: "function", function: { name: "other" } } },
      "tool_choice",
      /not among the tools/,
    ],
    [{ tools: [WEATHER], parallel_tool_calls: "no" }, "parallel_tool_calls", /a boolean/],
    [{ functions: [{ name: "f" }] }, "functions", /deprecated/],
    [
      { messages: [...user, { role: "assistant", content: null, tool_calls: [{ id: "c" }] }] },
      "messages[1].tool_calls[0]",
      /"function": \{"name", "arguments"\}/,
    ],
    [
      {
        messages: [...user, {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: 5 } }],
        }],
      },
      "messages[1].tool_calls[0].function.arguments",
      /a string of JSON/,
    ],
    [
      { messages: [...user, { role: "tool", content: "x" }] },
      "messages[1].tool_call_id",
      /required/,
    ],
  ];
  for (const [fields, param, message] of cases) {
    const res = await app.fetch(post({ model: "tiny", messages: user, ...fields }));
    assert.equal(res.status, 400, JSON.stringify(fields).slice(0, 100));
    const { error } = await res.json();
    assert.equal(error.param, param, JSON.stringify(fields).slice(0, 100));
    assert.match(error.message, message);
  }
  assert.equal(service.calls.length, 0);
});

function nest(n: number): Record<string, unknown> {
  return n === 0 ? { type: "object" } : { type: "object", properties: { a: nest(n - 1) } };
}

Deno.test("non-stream: message.tool_calls, content null when only calls were made", async () => {
  const service = fakeService({
    reply: () =>
      answer(["", ""], [
        call(0, "get_weather", '{"city":"Paris"}'),
        call(1, "get_weather", '{"city":"Rome"}'),
      ]),
  });
  const body = await (await createNodeApp({ service }).fetch(
    post({ model: "tiny", messages: user, tools: [WEATHER] }),
  )).json();
  assert.deepEqual(body.choices[0], {
    index: 0,
    message: {
      role: "assistant",
      content: null,
      refusal: null,
      tool_calls: [
        {
          id: "call_0",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        },
        {
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Rome"}' },
        },
      ],
    },
    logprobs: null,
    finish_reason: "tool_calls",
  });
  // Text and a call: both.
  const mixed = fakeService({
    reply: () => answer(["Let me check.", ""], [call(0, "get_weather", "{}")]),
  });
  const m = await (await createNodeApp({ service: mixed }).fetch(
    post({ model: "tiny", messages: user, tools: [WEATHER] }),
  )).json();
  assert.equal(m.choices[0].message.content, "Let me check.");
  assert.equal(m.choices[0].message.tool_calls.length, 1);
});

Deno.test("stream: a call is one delta with its index, id, type, name and arguments", async () => {
  const service = fakeService({
    reply: () => answer(["Sure", "", ""], [call(0, "get_weather", '{"city":"Paris"}')]),
  });
  const res = await createNodeApp({ service }).fetch(
    post({ model: "tiny", messages: user, tools: [WEATHER], stream: true }),
  );
  const chunks: Record<string, unknown>[] = [];
  for await (const data of readSse(res.body!)) if (data !== "[DONE]") chunks.push(JSON.parse(data));
  const deltas = chunks.map((c) => (c.choices as { delta: unknown }[])[0]?.delta);
  assert.deepEqual(deltas, [
    { role: "assistant", content: "" },
    { content: "Sure" },
    {
      tool_calls: [{
        index: 0,
        id: "call_0",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris"}' },
      }],
    },
    {},
  ]);
  const last = chunks.at(-1)!.choices as { finish_reason: string }[];
  assert.equal(last[0].finish_reason, "tool_calls");
});
