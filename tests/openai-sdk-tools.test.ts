/**
 * The official `openai` SDK, unchanged, calling tools: against a node served in process on
 * stories260K (no template: the generic format) and against a client node over a real mesh. A
 * weak model with tool_choice required still returns calls the SDK parses and whose arguments
 * validate against the schema; the stream helper assembles the same calls from the deltas.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { STORIES } from "./helpers.ts";
import { servingAndClient, startMesh } from "./mesh-harness.ts";

const FORECAST: OpenAI.ChatCompletionFunctionTool = {
  type: "function",
  function: {
    name: "get_forecast",
    description: "The weather forecast for a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", maxLength: 12 },
        days: { type: "integer", minimum: 1, maximum: 7 },
      },
      required: ["city", "days"],
      additionalProperties: false,
    },
    strict: true,
  },
};
const messages: OpenAI.ChatCompletionMessageParam[] = [
  { role: "user", content: "What will the weather be in Paris?" },
];

/** The arguments against FORECAST's schema, by hand. */
function checkForecast(args: string): void {
  const v = JSON.parse(args);
  assert.deepEqual(Object.keys(v).sort(), ["city", "days"], args);
  assert.ok(typeof v.city === "string" && v.city.length <= 12, args);
  assert.ok(Number.isInteger(v.days) && v.days >= 1 && v.days <= 7, args);
}

function functionCalls(calls: OpenAI.ChatCompletionMessageToolCall[] | undefined) {
  assert.ok(calls && calls.length > 0, "the answer made calls");
  return calls.map((c) => {
    assert.equal(c.type, "function");
    assert.match(c.id, /^call_[A-Za-z0-9]{24}$/);
    return (c as OpenAI.ChatCompletionMessageFunctionToolCall).function;
  });
}

async function toolSteps(client: OpenAI, model: string, t: Deno.TestContext) {
  const base = { model, messages, tools: [FORECAST], max_tokens: 90, seed: 5 };
  let call: OpenAI.ChatCompletionMessageToolCall | undefined;
  await t.step("non-stream, tool_choice required: message.tool_calls, content null", async () => {
    const r = await client.chat.completions.create({ ...base, tool_choice: "required" });
    const choice = r.choices[0];
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    for (const fn of functionCalls(choice.message.tool_calls)) {
      assert.equal(fn.name, "get_forecast");
      checkForecast(fn.arguments);
    }
    call = choice.message.tool_calls![0];
  });

  await t.step(
    "streamed, a named function: the SDK's stream helper assembles the calls",
    async () => {
      const stream = client.chat.completions.stream({
        ...base,
        seed: 6,
        tool_choice: { type: "function", function: { name: "get_forecast" } },
      });
      const done: string[] = [];
      stream.on("tool_calls.function.arguments.done", (e) => done.push(e.arguments));
      const final = await stream.finalChatCompletion();
      const choice = final.choices[0];
      assert.equal(choice.finish_reason, "tool_calls");
      const fns = functionCalls(choice.message.tool_calls);
      assert.deepEqual(done, fns.map((f) => f.arguments));
      for (const fn of fns) checkForecast(fn.arguments);
    },
  );

  await t.step(
    "streamed raw chunks: one delta per call with index, id, name, arguments",
    async () => {
      const stream = await client.chat.completions.create({
        ...base,
        seed: 7,
        tool_choice: "required",
        parallel_tool_calls: false,
        stream: true,
      });
      const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
      let finish: string | null = null;
      let content = "";
      for await (const chunk of stream) {
        deltas.push(...chunk.choices[0]?.delta.tool_calls ?? []);
        content += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(finish, "tool_calls");
      assert.equal(content, "");
      assert.equal(deltas.length, 1, "parallel_tool_calls false: one call");
      assert.equal(deltas[0].index, 0);
      assert.equal(deltas[0].function?.name, "get_forecast");
      checkForecast(deltas[0].function!.arguments!);
    },
  );

  await t.step(
    "the call and its result go back: the next answer is read, not refused",
    async () => {
      const r = await client.chat.completions.create({
        ...base,
        messages: [
          ...messages,
          { role: "assistant", content: null, tool_calls: [call!] },
          { role: "tool", tool_call_id: call!.id, content: '{"forecast": "sunny"}' },
        ],
        tool_choice: "auto",
      });
      const choice = r.choices[0];
      assert.ok(
        ["stop", "length", "tool_calls"].includes(choice.finish_reason),
        choice.finish_reason,
      );
      if (choice.finish_reason === "tool_calls") {
        for (const fn of functionCalls(choice.message.tool_calls)) checkForecast(fn.arguments);
      } else {
        assert.equal(typeof choice.message.content, "string");
      }
    },
  );

  await t.step("a bad tool is the SDK's BadRequestError naming the field", async () => {
    await assert.rejects(
      client.chat.completions.create({
        ...base,
        tools: [{ type: "function", function: { name: "no spaces allowed" } }],
      }),
      (err: unknown) =>
        err instanceof OpenAI.BadRequestError && err.param === "tools[0].function.name",
    );
  });
}

Deno.test("openai SDK with tools against a node on stories260K (generic format)", async (t) => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 1024 });
  const service = createLocalService({ engine, id: "stories260K" });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    createNodeApp({ service }).fetch,
  );
  const client = new OpenAI({
    baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
    apiKey: "unused",
    maxRetries: 0,
  });
  try {
    await toolSteps(client, "stories260K", t);
  } finally {
    service.close();
    await server.shutdown();
  }
});

Deno.test("openai SDK with tools against a client node, served over the mesh", async (t) => {
  const mesh = await startMesh();
  try {
    const { client } = await servingAndClient(mesh, { serveArgs: ["--ctx-size", "1024"] });
    const sdk = new OpenAI({ baseURL: `${client.url}/v1`, apiKey: "unused", maxRetries: 0 });
    await toolSteps(sdk, "stories260K", t);
  } finally {
    await mesh.close();
  }
});
