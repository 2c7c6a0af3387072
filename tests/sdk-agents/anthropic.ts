/**
 * The official `@anthropic-ai/sdk`, unchanged: `messages.create` with tool_choice `any` and
 * `messages.stream` with a named tool, each a `tool_use` round trip (the `tool_result` sent
 * back and the next answer read).
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { assertConformed, traffic } from "./kit.ts";
import { assertCall, FORECAST, PROMPT, TIME } from "./tools.ts";

const tools: Anthropic.Tool[] = [FORECAST, TIME].map((f) => ({
  name: f.name,
  description: f.description,
  input_schema: f.parameters,
}));

const STOP = ["end_turn", "max_tokens", "stop_sequence", "tool_use"];

function toolUses(m: Anthropic.Message): Anthropic.ToolUseBlock[] {
  assert.equal(m.stop_reason, "tool_use");
  const uses = m.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
  assert.ok(uses.length >= 1, `tool_use blocks in ${JSON.stringify(m.content)}`);
  for (const u of uses) {
    assert.match(u.id, /^toolu_/);
    assertCall(u.name, u.input);
  }
  return uses;
}

export async function anthropicSteps(t: Deno.TestContext, url: string, model: string) {
  const net = traffic();
  const client = new Anthropic({ baseURL: url, apiKey: "unused", maxRetries: 0, fetch: net.fetch });
  const question: Anthropic.MessageParam = { role: "user", content: PROMPT };

  /** The answer's calls and their results go back; the next answer is read. */
  async function roundTrip(answer: Anthropic.Message, uses: Anthropic.ToolUseBlock[]) {
    const next = await client.messages.create({
      model,
      max_tokens: 24,
      tools,
      messages: [
        question,
        { role: "assistant", content: answer.content },
        {
          role: "user",
          content: uses.map((u) => ({
            type: "tool_result" as const,
            tool_use_id: u.id,
            content: "Sunny, 21 °C",
          })),
        },
      ],
    });
    assert.ok(STOP.includes(next.stop_reason!), `stop_reason ${next.stop_reason}`);
    for (const b of next.content) if (b.type === "tool_use") assertCall(b.name, b.input);
  }

  await t.step(
    `anthropic (${model}): messages.create, tool_choice any, tool_result back`,
    async () => {
      const m = await client.messages.create({
        model,
        max_tokens: 100,
        tools,
        tool_choice: { type: "any", disable_parallel_tool_use: true },
        messages: [question],
      });
      const uses = toolUses(m);
      assert.equal(uses.length, 1, "disable_parallel_tool_use: one call");
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
      await roundTrip(m, uses);
      await assertConformed(net);
    },
  );

  await t.step(
    `anthropic (${model}): messages.stream, a named tool, tool_result back`,
    async () => {
      const stream = client.messages.stream({
        model,
        max_tokens: 100,
        tools,
        tool_choice: { type: "tool", name: FORECAST.name },
        messages: [question],
      });
      const json = new Map<number, string>();
      stream.on("streamEvent", (e) => {
        if (e.type === "content_block_delta" && e.delta.type === "input_json_delta") {
          json.set(e.index, (json.get(e.index) ?? "") + e.delta.partial_json);
        }
      });
      const m = await stream.finalMessage();
      const uses = toolUses(m);
      assert.ok(uses.every((u) => u.name === FORECAST.name), "only the named tool");
      m.content.forEach((b, i) => {
        if (b.type !== "tool_use") return;
        assert.deepEqual(JSON.parse(json.get(i)!), b.input, "the input_json_delta pieces make it");
      });
      await roundTrip(m, uses);
      await assertConformed(net);
    },
  );
}
