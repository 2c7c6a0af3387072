import assert from "node:assert/strict";
import { type ToolCallPlan, toolCallPlan } from "../inference/text.ts";
import {
  createToolCallLayer,
  markerTokens,
  readToolCalls,
  type RunRequest,
} from "./tool-calls-stream.ts";
import type { DoneEvent, InferEvent, InferRequest, ToolSpec } from "./service.ts";
import { doneEvent } from "../tests/support/fake-service.ts";

const TOOLS: ToolSpec[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } } },
    },
  },
  { type: "function", function: { name: "get_time" } },
];
const QWEN = Deno.readTextFileSync(
  new URL("../tests/fixtures/templates/Qwen-Qwen2.5-7B-Instruct.jinja", import.meta.url),
);

function done(finish: DoneEvent["finish_reason"] = "stop", tail?: string): DoneEvent {
  return doneEvent(5, 9, finish, tail);
}

async function* events(texts: string[], end = done()): AsyncGenerator<InferEvent> {
  for (const [i, text] of texts.entries()) yield { type: "token", text, id: 100 + i };
  yield end;
}

async function collect(it: AsyncIterable<InferEvent>): Promise<InferEvent[]> {
  const out: InferEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

function ids() {
  let n = 0;
  return () => `call_${n++}`;
}

const plan = (choice: InferRequest["tool_choice"] = "auto", parallel?: boolean) =>
  toolCallPlan(QWEN, { tools: TOOLS, tool_choice: choice, parallel_tool_calls: parallel })!;

Deno.test("a call's tokens come out empty, the call once whole, then finish_reason tool_calls", async () => {
  const out = await collect(readToolCalls(
    events([
      "Sure.",
      " <tool_",
      'call>{"name": "get_weather", ',
      '"arguments": {"city": "Oslo"}}',
      "</tool_call>",
    ]),
    plan(),
    new Map(),
    ids(),
  ));
  assert.deepEqual(out.map((e) => e.type === "token" ? e.text : e.type), [
    "Sure.",
    " ",
    "",
    "",
    "",
    "tool_call",
    "done",
  ]);
  assert.deepEqual(out[5], {
    type: "tool_call",
    index: 0,
    id: "call_0",
    name: "get_weather",
    arguments: '{"city":"Oslo"}',
  });
  // Every token keeps its event (ids, usage counts), only its text changes.
  assert.deepEqual(out.filter((e) => e.type === "token").map((e) => e.type === "token" && e.id), [
    100,
    101,
    102,
    103,
    104,
  ]);
  const end = out.at(-1) as DoneEvent;
  assert.equal(end.finish_reason, "tool_calls");
  assert.equal(end.tail, undefined);
});

Deno.test("parallel_tool_calls false keeps the first call; a malformed call stays text", async () => {
  const two = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>' +
    '<tool_call>{"name": "get_weather", "arguments": {"city": "X"}}</tool_call>';
  const one = await collect(readToolCalls(events([two]), plan("auto", false), new Map(), ids()));
  assert.deepEqual(
    one.filter((e) => e.type === "tool_call").map((e) => e.type === "tool_call" && e.name),
    [
      "get_time",
    ],
  );
  const bad = '<tool_call>{"name": "rm", "arguments": {}}</tool_call>';
  const out = await collect(readToolCalls(events([bad]), plan(), new Map(), ids()));
  assert.equal(out.map((e) => e.type === "token" ? e.text : "").join(""), bad);
  assert.equal((out.at(-1) as DoneEvent).finish_reason, "stop");
});

Deno.test("the held end: a call closed by the end, and a tail released as text", async () => {
  // A forced call (prefilled) that the grammar closed as the budget ran out: a call was made.
  const forced = plan("required");
  const out = await collect(readToolCalls(
    events(['{"name": "get_time", "arguments": {}}'], done("length")),
    forced,
    new Map(),
    ids(),
  ));
  assert.deepEqual(out.map((e) => e.type), ["token", "tool_call", "done"]);
  assert.equal((out.at(-1) as DoneEvent).finish_reason, "tool_calls");
  const text = await collect(
    readToolCalls(events(["a <"], done("stop", "to")), plan(), new Map(), ids()),
  );
  assert.deepEqual(text.map((e) => e.type === "token" ? e.text : e.type === "done" ? e.tail : ""), [
    "a ",
    "<to",
  ]);
});

Deno.test("a marker written as a control token (decoded to nothing) still opens a call", async () => {
  const mistral = toolCallPlan(
    Deno.readTextFileSync(
      new URL(
        "../tests/fixtures/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
        import.meta.url,
      ),
    ),
    { tools: TOOLS },
  )!;
  async function* stream(): AsyncGenerator<InferEvent> {
    yield { type: "token", text: "", id: 5 }; // [TOOL_CALLS]
    yield { type: "token", text: '[{"name": "get_time", "arguments": {}}]', id: 6 };
    yield done();
  }
  const out = await collect(
    readToolCalls(stream(), mistral, new Map([[5, "[TOOL_CALLS]"]]), ids()),
  );
  assert.deepEqual(out.map((e) => e.type), ["token", "token", "tool_call", "done"]);
  // The map comes from the tokenizer: a single token that decodes to nothing.
  const fake = {
    encode: (t: string) => t === "[TOOL_CALLS]" ? [5] : [...t].map((c) => c.charCodeAt(0)),
    decode: (ids: number[]) => ids[0] === 5 ? "" : String.fromCharCode(...ids),
  };
  assert.deepEqual([...markerTokens(fake)], [[5, "[TOOL_CALLS]"]]);
});

Deno.test("the layer: no tools, tool_choice none and prompts pass; a forced call gets its schema", async () => {
  const seen: InferRequest[] = [];
  const run: RunRequest = (req) => {
    seen.push(req);
    return events(['{"name": "get_time", "arguments": {}}']);
  };
  const layer = createToolCallLayer({
    template: QWEN,
    tokenizer: { encode: () => [1, 2], decode: () => "x" },
    constrains: true,
    newId: ids(),
  });
  const base: InferRequest = {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    params: { max_tokens: 9 },
  };
  for (const req of [base, { ...base, tools: TOOLS, tool_choice: "none" as const }]) {
    const out = await collect(layer(req, run));
    assert.equal(out.filter((e) => e.type === "tool_call").length, 0);
    assert.equal(seen.at(-1), req, "passed as it is");
  }
  const forced = { ...base, tools: TOOLS, tool_choice: "required" as const };
  const out = await collect(layer(forced, run));
  assert.equal(out.filter((e) => e.type === "tool_call").length, 1);
  assert.deepEqual(seen.at(-1)!.params.constraint, {
    type: "json_schema",
    schema: (plan("required") as ToolCallPlan).schema,
  });
  // auto on a template with tools: read, not constrained.
  await collect(layer({ ...base, tools: TOOLS }, run));
  assert.equal(seen.at(-1)!.params.constraint, undefined);
});

Deno.test("the generic format's auto schema only where the engine constrains", async () => {
  const seen: InferRequest[] = [];
  const run: RunRequest = (req) => {
    seen.push(req);
    return events(['{"response": "hello"}']);
  };
  const req: InferRequest = {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    params: {},
    tools: TOOLS,
  };
  const tokenizer = { encode: () => [1, 2], decode: () => "x" };
  for (const constrains of [true, false]) {
    const layer = createToolCallLayer({ template: undefined, tokenizer, constrains });
    const out = await collect(layer(req, run));
    assert.equal(out.map((e) => e.type === "token" ? e.text : "").join(""), "hello");
    assert.equal(seen.at(-1)!.params.constraint?.type, constrains ? "json_schema" : undefined);
  }
  // A client's own response_format wins over the generic reply-or-call schema.
  const layer = createToolCallLayer({ template: undefined, tokenizer, constrains: true });
  const own = { ...req, params: { constraint: { type: "json_object" as const } } };
  await collect(layer(own, run));
  assert.deepEqual(seen.at(-1)!.params.constraint, { type: "json_object" });
});
