/**
 * LangChain's `ChatOpenAI`, unchanged (configuration.baseURL): `bindTools` with a call that comes
 * back in `tool_calls` (invoked, and streamed with `stream_usage` and `parallel_tool_calls`), its
 * ToolMessage sent back, and `withStructuredOutput(zodSchema)` by JSON Schema and by function
 * calling.
 */
import assert from "node:assert/strict";
import { ChatOpenAI } from "@langchain/openai";
import { type AIMessageChunk, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { assertConformed, traffic } from "./kit.ts";
import {
  assertCall,
  assertPerson,
  FORECAST,
  forecastInput,
  person,
  PROMPT,
  TIME,
} from "./tools.ts";

const forecast = tool(() => "sunny", {
  name: FORECAST.name,
  description: FORECAST.description,
  schema: forecastInput,
});
const time = { type: "function" as const, function: { ...TIME } };

export async function langchainSteps(t: Deno.TestContext, url: string, model: string) {
  const net = traffic();
  const llm = new ChatOpenAI({
    model,
    apiKey: "unused",
    configuration: { baseURL: `${url}/v1`, fetch: net.fetch },
    maxTokens: 100,
    maxRetries: 0,
  });

  await t.step(`langchain (${model}): bindTools, tool_calls, the ToolMessage back`, async () => {
    const question = new HumanMessage(PROMPT);
    const ai = await llm.bindTools([forecast, time], { tool_choice: "required" }).invoke([
      question,
    ]);
    assert.ok(ai.tool_calls && ai.tool_calls.length >= 1, "the call came back in tool_calls");
    for (const c of ai.tool_calls) {
      assert.match(c.id!, /^call_/);
      assertCall(c.name, c.args);
    }
    const next = await llm.bindTools([forecast, time]).invoke([
      question,
      ai,
      ...ai.tool_calls.map((c) => new ToolMessage({ tool_call_id: c.id!, content: "sunny" })),
    ]);
    for (const c of next.tool_calls ?? []) assertCall(c.name, c.args);
    await assertConformed(net);
  });

  await t.step(`langchain (${model}): a named tool streamed, stream_usage, one call`, async () => {
    const streaming = new ChatOpenAI({
      model,
      apiKey: "unused",
      configuration: { baseURL: `${url}/v1`, fetch: net.fetch },
      maxTokens: 100,
      maxRetries: 0,
      streamUsage: true,
    });
    const bound = streaming.bindTools([forecast, time], {
      tool_choice: FORECAST.name,
      parallel_tool_calls: false,
    });
    let whole: AIMessageChunk | undefined;
    for await (const chunk of await bound.stream(PROMPT)) {
      whole = whole ? whole.concat(chunk) : chunk;
    }
    assert.equal(whole?.tool_calls?.length, 1, JSON.stringify(whole?.tool_call_chunks));
    assertCall(whole!.tool_calls![0].name, whole!.tool_calls![0].args, [FORECAST.name]);
    assert.ok(whole!.usage_metadata && whole!.usage_metadata.output_tokens > 0, "usage came");
    const body = net.sent.at(-1)!.body;
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.parallel_tool_calls, false);
    await assertConformed(net);
  });

  await t.step(
    `langchain (${model}): withStructuredOutput(zod), JSON Schema and tool`,
    async () => {
      // Room for the answer to end on its own: the openai SDK's parse helper, which LangChain
      // uses, refuses an answer whose finish_reason is length, even one the grammar closed valid.
      const roomy = new ChatOpenAI({
        model,
        apiKey: "unused",
        configuration: { baseURL: `${url}/v1`, fetch: net.fetch },
        maxTokens: 600,
        maxRetries: 0,
      });
      for (const method of ["jsonSchema", "functionCalling"] as const) {
        const value = await roomy.withStructuredOutput(person, { method }).invoke(
          "Describe a person.",
        );
        assertPerson(value, `withStructuredOutput ${method}`);
      }
      await assertConformed(net);
    },
  );
}
