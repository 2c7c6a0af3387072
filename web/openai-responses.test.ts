import assert from "node:assert/strict";
import type { InferEvent } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";
import { response, responseEvent } from "../tests/support/api-shapes.ts";

/** Text, then a tail held back until the end. */
function text(): InferEvent[] {
  const events = tokens("Let me", " check.");
  Object.assign(events.at(-1)!, { finish_reason: "stop", tail: "!" });
  return events;
}

/** Text, then a call. */
function call(): InferEvent[] {
  const events = tokens("Let me", " check.");
  const done = events.pop()!;
  if (done.type === "done") done.finish_reason = "tool_calls";
  return [
    ...events,
    { type: "tool_call", index: 0, id: "call_abc", name: "f", arguments: "{}" },
    done,
  ];
}

/** Text, a call, then more text (a model that writes on after its call). */
function textAfterCall(): InferEvent[] {
  const events = call();
  const done = events.pop()!;
  return [...events, { type: "token", text: " Done.", id: 9 }, done];
}

const post = (stream: boolean) =>
  new Request("http://localhost/v1/responses", {
    method: "POST",
    body: JSON.stringify({
      model: "tiny",
      input: "hi",
      stream,
      tools: [{ type: "function", name: "f", parameters: { type: "object" }, strict: false }],
    }),
  });

async function streamed(reply: () => InferEvent[]) {
  const app = createNodeApp({ service: fakeService({ reply }) });
  const body = await (await app.fetch(post(true))).text();
  const events = body.trim().split("\n\n").map((f) => JSON.parse(f.split("\ndata: ")[1]));
  for (const e of events) {
    const r = responseEvent.safeParse(e);
    assert.ok(r.success, `${JSON.stringify(e)}\n${r.error?.message}`);
  }
  return events;
}

Deno.test("responses stream: every event in OpenAI's published shape, text deltas with logprobs", async () => {
  const events = await streamed(text);
  const deltas = events.filter((e) => e.type === "response.output_text.delta");
  assert.deepEqual(deltas.map((e) => [e.delta, e.logprobs]), [
    ["Let me", []],
    [" check.", []],
    ["!", []],
  ]);
  const done = events.find((e) => e.type === "response.output_text.done");
  assert.deepEqual([done.text, done.logprobs], ["Let me check.!", []]);
  const calls = await streamed(call);
  assert.ok(calls.some((e) => e.type === "response.function_call_arguments.done"));
});

Deno.test("responses: the whole answer in OpenAI's published shape", async () => {
  for (const reply of [text, call]) {
    const app = createNodeApp({ service: fakeService({ reply }) });
    const body = await (await app.fetch(post(false))).json();
    const r = response.safeParse(body);
    assert.ok(r.success, `${JSON.stringify(body)}\n${r.error?.message}`);
  }
});

Deno.test("responses: text after a call is a new message with its own id, in stream order", async () => {
  const events = await streamed(textAfterCall);
  const added = events.filter((e) => e.type === "response.output_item.added");
  const done = events.filter((e) => e.type === "response.output_item.done");
  assert.deepEqual(added.map((e) => [e.output_index, e.item.type]), [
    [0, "message"],
    [1, "function_call"],
    [2, "message"],
  ]);
  const ids = added.map((e) => e.item.id);
  assert.equal(new Set(ids).size, 3, `distinct item ids: ${ids}`);
  const final = events.at(-1).response;
  assert.deepEqual(final.output, done.map((e) => e.item), "the output is the items as streamed");
  assert.deepEqual(final.output.map((i: { content?: { text: string }[] }) => i.content?.[0].text), [
    "Let me check.",
    undefined,
    " Done.",
  ]);
  const app = createNodeApp({ service: fakeService({ reply: textAfterCall }) });
  const whole = await (await app.fetch(post(false))).json();
  assert.deepEqual(
    whole.output.map((i: { type: string }) => i.type),
    ["message", "function_call", "message"],
  );
});
