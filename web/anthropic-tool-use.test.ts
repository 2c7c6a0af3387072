import assert from "node:assert/strict";
import type { InferEvent } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";

const body = (stream: boolean) =>
  JSON.stringify({
    model: "tiny",
    max_tokens: 50,
    stream,
    tools: [{ name: "get_weather", input_schema: { type: "object" } }],
    messages: [{ role: "user", content: "Weather in Paris?" }],
  });
const post = (stream: boolean) =>
  new Request("http://localhost/v1/messages", { method: "POST", body: body(stream) });

/** "Let me check." then a call, as a serving node's tool layer sends them. */
function answer(): InferEvent[] {
  const events = tokens("Let me check.", "");
  const done = events.pop()!;
  if (done.type === "done") done.finish_reason = "tool_calls";
  return [
    ...events,
    {
      type: "tool_call",
      index: 0,
      id: "call_abc",
      name: "get_weather",
      arguments: '{"city":"Paris"}',
    },
    done,
  ];
}

Deno.test("anthropic: a call is a tool_use block after the text; stop_reason tool_use", async () => {
  const app = createNodeApp({ service: fakeService({ reply: answer }) });
  const m = await (await app.fetch(post(false))).json();
  assert.deepEqual(m.content, [
    { type: "text", text: "Let me check." },
    { type: "tool_use", id: "toolu_abc", name: "get_weather", input: { city: "Paris" } },
  ]);
  assert.equal(m.stop_reason, "tool_use");
});

Deno.test("anthropic stream: the text block closes, the tool_use block streams its input", async () => {
  const app = createNodeApp({ service: fakeService({ reply: answer }) });
  const text = await (await app.fetch(post(true))).text();
  const events = text.trim().split("\n\n").map((f) => JSON.parse(f.split("\ndata: ")[1]));
  assert.deepEqual(events.map((e) => [e.type, e.index ?? null]), [
    ["message_start", null],
    ["content_block_start", 0],
    ["content_block_delta", 0],
    ["content_block_stop", 0],
    ["content_block_start", 1],
    ["content_block_delta", 1],
    ["content_block_stop", 1],
    ["message_delta", null],
    ["message_stop", null],
  ]);
  assert.deepEqual(events[4].content_block, {
    type: "tool_use",
    id: "toolu_abc",
    name: "get_weather",
    input: {},
  });
  assert.deepEqual(events[5].delta, { type: "input_json_delta", partial_json: '{"city":"Paris"}' });
  assert.equal(events[7].delta.stop_reason, "tool_use");
});
