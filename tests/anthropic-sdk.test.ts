/**
 * The official `@anthropic-ai/sdk`, unchanged, against a node on stories260K: `messages.create`
 * and `messages.stream` as Claude Code and other Anthropic clients call them, over real HTTP,
 * with the key sent Anthropic's way (x-api-key). Each answer and stream event is checked
 * against the shapes Anthropic publishes.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { STORIES } from "./helpers.ts";

const STOP_REASONS = new Set(["end_turn", "max_tokens", "stop_sequence", "tool_use"]);

function checkMessage(m: Anthropic.Message) {
  assert.equal(m.type, "message");
  assert.equal(m.role, "assistant");
  assert.match(m.id, /^msg_/);
  assert.equal(m.model, "stories260K");
  assert.ok(STOP_REASONS.has(m.stop_reason!), `stop_reason ${m.stop_reason}`);
  assert.ok(Number.isInteger(m.usage.input_tokens) && m.usage.input_tokens > 0);
  assert.ok(Number.isInteger(m.usage.output_tokens));
  for (const block of m.content) assert.ok(block.type === "text" || block.type === "tool_use");
}

Deno.test("anthropic SDK against a served node on stories260K", async (t) => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 1024 });
  const service = createLocalService({ engine, id: "stories260K" });
  const app = createNodeApp({ service, apiKey: "secret" });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const client = new Anthropic({
    baseURL: `http://127.0.0.1:${server.addr.port}`,
    apiKey: "secret",
    maxRetries: 0,
  });
  const base = {
    model: "stories260K",
    max_tokens: 16,
    temperature: 0,
    system: "You tell stories.",
    messages: [{ role: "user" as const, content: "Once upon a time" }],
  };
  try {
    await t.step("messages.create: one text block, max_tokens, usage", async () => {
      const m = await client.messages.create(base);
      checkMessage(m);
      assert.equal(m.stop_reason, "max_tokens");
      assert.equal(m.usage.output_tokens, 16);
      assert.equal(m.content.length, 1);
      assert.ok((m.content[0] as Anthropic.TextBlock).text.length > 0);
    });

    await t.step("messages.stream: events in order, text equal to the whole answer", async () => {
      const whole = await client.messages.create(base);
      const stream = client.messages.stream(base);
      const types: string[] = [];
      stream.on("streamEvent", (e) => types.push(e.type));
      const final = await stream.finalMessage();
      checkMessage(final);
      assert.deepEqual(final.content, whole.content);
      assert.equal(types[0], "message_start");
      assert.equal(types[1], "content_block_start");
      assert.ok(types.slice(2, -3).every((x) => x === "content_block_delta"));
      assert.deepEqual(types.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
      assert.equal(final.usage.output_tokens, 16);
    });

    await t.step("a tool_use / tool_result history is read, not refused", async () => {
      const m = await client.messages.create({
        ...base,
        tools: [{
          name: "get_weather",
          description: "Weather in a city",
          input_schema: { type: "object", properties: { city: { type: "string" } } },
        }],
        messages: [
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            content: [{
              type: "tool_use",
              id: "toolu_1",
              name: "get_weather",
              input: { city: "Paris" },
            }],
          },
          {
            role: "user",
            content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "Sunny, 21 °C" }],
          },
        ],
      });
      checkMessage(m);
    });

    await t.step(
      "messages.countTokens: the prompt's size, as messages.create counts it",
      async () => {
        const { max_tokens: _unused, temperature: _t, ...body } = base;
        const counted = await client.messages.countTokens(body);
        const m = await client.messages.create({ ...base, max_tokens: 1 });
        assert.equal(counted.input_tokens, m.usage.input_tokens);
        assert.ok(counted.input_tokens > 0);
      },
    );

    await t.step("errors come in Anthropic's shape", async () => {
      await assert.rejects(
        client.messages.create({ ...base, max_tokens: 0 }),
        (e: unknown) =>
          e instanceof Anthropic.BadRequestError &&
          (e.error as { error: { type: string } }).error.type === "invalid_request_error" &&
          /max_tokens/.test(e.message),
      );
      const wrongKey = new Anthropic({ baseURL: client.baseURL, apiKey: "nope", maxRetries: 0 });
      await assert.rejects(wrongKey.messages.create(base), Anthropic.AuthenticationError);
      await assert.rejects(
        client.messages.create({
          ...base,
          messages: [{
            role: "user",
            content: [{
              type: "image",
              source: { type: "base64", media_type: "image/png", data: "AA==" },
            }],
          }],
        }),
        (e: unknown) => e instanceof Anthropic.BadRequestError && /image content/.test(e.message),
      );
    });
  } finally {
    await server.shutdown();
  }
});
