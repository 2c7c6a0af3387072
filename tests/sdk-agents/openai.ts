/**
 * The official `openai` SDK, unchanged: chat with tools streamed (the tool_calls deltas
 * assembled by index) and the call's result sent back; `responses.create` streamed with a
 * function call, then its `function_call_output`, both as the whole history and through
 * `previous_response_id`.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { assertConformed, traffic } from "./kit.ts";
import { assertCall, FORECAST, PROMPT, TIME } from "./tools.ts";

const chatTools: OpenAI.ChatCompletionFunctionTool[] = [FORECAST, TIME].map((f) => ({
  type: "function",
  function: { ...f },
}));
const responseTools: OpenAI.Responses.FunctionTool[] = [FORECAST, TIME].map((f) => ({
  type: "function",
  ...f,
  strict: true,
}));

interface Assembled {
  id: string;
  name: string;
  arguments: string;
}

export async function openaiSteps(t: Deno.TestContext, url: string, model: string) {
  const net = traffic();
  const client = new OpenAI({
    baseURL: `${url}/v1`,
    apiKey: "unused",
    maxRetries: 0,
    fetch: net.fetch,
  });
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: PROMPT }];

  await t.step(`openai (${model}): chat with tools streamed, deltas assembled`, async () => {
    const stream = await client.chat.completions.create({
      model,
      messages,
      tools: chatTools,
      tool_choice: "required",
      max_tokens: 100,
      seed: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    const calls = new Map<number, Assembled>();
    let finish: string | null = null;
    let content = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      content += choice.delta.content ?? "";
      finish = choice.finish_reason ?? finish;
      for (const d of choice.delta.tool_calls ?? []) {
        const c = calls.get(d.index) ?? { id: "", name: "", arguments: "" };
        c.id += d.id ?? "";
        c.name += d.function?.name ?? "";
        c.arguments += d.function?.arguments ?? "";
        calls.set(d.index, c);
      }
    }
    assert.equal(finish, "tool_calls");
    assert.equal(content, "", "a forced call shows no text");
    assert.ok(calls.size >= 1, "the deltas made a call");
    assert.deepEqual([...calls.keys()], [...calls.keys()].map((_, i) => i), "indexes 0..n-1");
    for (const c of calls.values()) {
      assert.match(c.id, /^call_/);
      assertCall(c.name, c.arguments);
    }
    assert.ok(usage && usage.completion_tokens > 0, "the usage chunk came");

    const called = [...calls.values()];
    const next = await client.chat.completions.create({
      model,
      messages: [
        ...messages,
        {
          role: "assistant",
          content: null,
          tool_calls: called.map((c) => ({
            id: c.id,
            type: "function" as const,
            function: { name: c.name, arguments: c.arguments },
          })),
        },
        ...called.map((c) => ({
          role: "tool" as const,
          tool_call_id: c.id,
          content: '{"forecast":"sunny"}',
        })),
      ],
      tools: chatTools,
      max_tokens: 24,
    });
    const choice = next.choices[0];
    assert.ok(["stop", "length", "tool_calls"].includes(choice.finish_reason));
    for (const c of choice.message.tool_calls ?? []) {
      if (c.type === "function") assertCall(c.function.name, c.function.arguments);
    }
    await assertConformed(net);
  });

  await t.step(
    `openai (${model}): responses streamed with a function call, then its output`,
    async () => {
      const stream = await client.responses.create({
        model,
        input: PROMPT,
        tools: responseTools,
        tool_choice: "required",
        max_output_tokens: 100,
        stream: true,
      });
      const done: OpenAI.Responses.ResponseFunctionToolCall[] = [];
      const argsDone: string[] = [];
      let first: OpenAI.Responses.Response | undefined;
      for await (const event of stream) {
        if (event.type === "response.output_item.done" && event.item.type === "function_call") {
          done.push(event.item);
        }
        if (event.type === "response.function_call_arguments.done") argsDone.push(event.arguments);
        if (event.type === "response.completed" || event.type === "response.incomplete") {
          first = event.response;
        }
      }
      assert.equal(first?.status, "completed");
      assert.ok(done.length >= 1, "a function_call item streamed");
      assert.deepEqual(argsDone, done.map((c) => c.arguments));
      const items = first!.output.filter((o) => o.type === "function_call");
      assert.deepEqual(
        items.map((c) => [c.call_id, c.arguments]),
        done.map((c) => [c.call_id, c.arguments]),
      );
      for (const c of done) assertCall(c.name, c.arguments);

      const outputs = done.map((c) => ({
        type: "function_call_output" as const,
        call_id: c.call_id,
        output: '{"forecast":"sunny"}',
      }));
      // The answer to the results, streamed: text deltas this time.
      const answer = client.responses.stream({
        model,
        input: [
          { role: "user", content: PROMPT },
          ...done.map((c) => ({
            type: "function_call" as const,
            call_id: c.call_id,
            name: c.name,
            arguments: c.arguments,
          })),
          ...outputs,
        ],
        tools: responseTools,
        tool_choice: "none",
        max_output_tokens: 16,
        temperature: 0,
      });
      let deltas = "";
      answer.on("response.output_text.delta", (e) => deltas += e.delta);
      const whole = await answer.finalResponse();
      assert.ok(whole.status === "completed" || whole.status === "incomplete");
      assert.equal(deltas, whole.output_text);
      const continued = await client.responses.create({
        model,
        previous_response_id: first!.id,
        input: outputs,
        tools: responseTools,
        tool_choice: "none",
        max_output_tokens: 16,
        temperature: 0,
      });
      assert.equal(continued.previous_response_id, first!.id);
      assert.equal(
        continued.usage!.input_tokens,
        whole.usage!.input_tokens,
        "previous_response_id gives the same conversation as sending it whole",
      );
      assert.equal(continued.output_text, whole.output_text, "so, greedy, the same answer");
      await assertConformed(net);
    },
  );
}
