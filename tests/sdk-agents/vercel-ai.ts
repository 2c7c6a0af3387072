/**
 * The Vercel AI SDK, unchanged: `generateText` with a tool whose `execute` runs and a second
 * step that reads its result, `streamText` with a named tool, and `generateObject` with a zod
 * schema, through `@ai-sdk/openai-compatible` (chat completions) and through `@ai-sdk/openai`'s
 * Responses model.
 */
import assert from "node:assert/strict";
import {
  generateObject,
  generateText,
  type LanguageModel,
  stepCountIs,
  streamText,
  tool,
} from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { createOpenAI } from "@ai-sdk/openai";
import { assertConformed, type Traffic, traffic } from "./kit.ts";
import { assertCall, assertPerson, FORECAST, forecastInput, person, PROMPT } from "./tools.ts";

/** Two steps: a forced call whose `execute` runs, then an answer that reads its result. */
async function toolSteps(model: LanguageModel, net: Traffic, path: string, options = {}) {
  const executed: unknown[] = [];
  const forecast = tool({
    description: FORECAST.description,
    inputSchema: forecastInput,
    execute: (input) => {
      executed.push(input);
      return Promise.resolve({ forecast: "sunny", high: 21 });
    },
  });
  const before = net.sent.length;
  const r = await generateText({
    model,
    tools: { get_forecast: forecast },
    toolChoice: "required",
    prepareStep: ({ stepNumber }) => stepNumber === 0 ? undefined : { toolChoice: "none" },
    stopWhen: stepCountIs(2),
    prompt: PROMPT,
    maxOutputTokens: 100,
    providerOptions: options,
  });
  assert.equal(r.steps.length, 2, "a call, then an answer");
  const [call, answer] = r.steps;
  assert.equal(call.finishReason, "tool-calls");
  assert.ok(call.toolCalls.length >= 1);
  for (const c of call.toolCalls) assertCall(c.toolName, c.input);
  assert.deepEqual(executed, call.toolCalls.map((c) => c.input), "execute ran for each call");
  assert.deepEqual(
    call.toolResults.map((x) => x.output),
    executed.map(() => ({ forecast: "sunny", high: 21 })),
  );
  assert.ok(["stop", "length"].includes(answer.finishReason), answer.finishReason);
  assert.equal(answer.toolCalls.length, 0);
  const requests = net.sent.slice(before).filter((s) => s.path === path);
  assert.equal(requests.length, 2);
  const second = JSON.stringify(requests[1].body);
  for (const c of call.toolCalls) assert.ok(second.includes(c.toolCallId), "the result went back");
  return requests;
}

export async function vercelSteps(t: Deno.TestContext, url: string, modelId: string) {
  const net = traffic();
  const compatible = createOpenAICompatible({
    name: "grove",
    baseURL: `${url}/v1`,
    apiKey: "unused",
    fetch: net.fetch,
    includeUsage: true,
    supportsStructuredOutputs: true,
  });
  const openai = createOpenAI({ baseURL: `${url}/v1`, apiKey: "unused", fetch: net.fetch });

  await t.step(`vercel ai (${modelId}): generateText with an executed tool, chat`, async () => {
    await toolSteps(compatible(modelId), net, "/v1/chat/completions");
    await assertConformed(net);
  });

  await t.step(`vercel ai (${modelId}): streamText, a named tool, usage`, async () => {
    const r = streamText({
      model: compatible(modelId),
      tools: {
        get_forecast: tool({ description: FORECAST.description, inputSchema: forecastInput }),
      },
      toolChoice: { type: "tool", toolName: "get_forecast" },
      prompt: PROMPT,
      maxOutputTokens: 100,
    });
    const parts: string[] = [];
    for await (const part of r.fullStream) parts.push(part.type);
    const calls = await r.toolCalls;
    assert.ok(calls.length >= 1, parts.join(","));
    for (const c of calls) assertCall(c.toolName, c.input, [FORECAST.name]);
    assert.ok(parts.includes("tool-input-delta"), "the arguments streamed");
    assert.ok((await r.usage).outputTokens! > 0, "the usage chunk came");
    const body = net.sent.at(-1)!.body;
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.deepEqual(body.tool_choice, { type: "function", function: { name: FORECAST.name } });
    await assertConformed(net);
  });

  await t.step(`vercel ai (${modelId}): generateObject with a zod schema, chat`, async () => {
    const r = await generateObject({
      model: compatible(modelId),
      schema: person,
      prompt: "Describe a person.",
      maxOutputTokens: 120,
    });
    assertPerson(r.object, "generateObject's object");
    const format = net.sent.at(-1)!.body.response_format as Record<string, unknown>;
    assert.equal(format.type, "json_schema", "sent as a strict json_schema");
    await assertConformed(net);
  });

  await t.step(
    `vercel ai (${modelId}): generateText with an executed tool, responses`,
    async () => {
      const requests = await toolSteps(openai.responses(modelId), net, "/v1/responses", {
        openai: {
          store: false,
          user: "agent-7",
          metadata: { run: "sdk-agents" },
          parallelToolCalls: false,
        },
      });
      assert.equal(requests[0].body.store, false, "store: false was sent, and accepted");
      await assertConformed(net);
    },
  );

  await t.step(`vercel ai (${modelId}): generateObject with a zod schema, responses`, async () => {
    const r = await generateObject({
      model: openai.responses(modelId),
      schema: person,
      prompt: "Describe a person.",
      maxOutputTokens: 120,
      providerOptions: { openai: { strictJsonSchema: true } },
    });
    assertPerson(r.object, "generateObject's object");
    const text = net.sent.at(-1)!.body.text as { format: { type: string; strict: boolean } };
    assert.equal(text.format.type, "json_schema");
    assert.equal(text.format.strict, true);
    await assertConformed(net);
  });
}
