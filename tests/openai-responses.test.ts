/**
 * The `openai` SDK's Responses API (`responses.create`, streamed and not, and
 * `previous_response_id`), unchanged, against a node on stories260K over real HTTP: each answer
 * and event in the shapes OpenAI publishes, the streamed text equal to the whole answer.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { STORIES } from "./helpers.ts";

Deno.test("openai SDK's Responses API against a served node on stories260K", async (t) => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 256 });
  const service = createLocalService({ engine, id: "stories260K" });
  const app = createNodeApp({ service });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const client = new OpenAI({
    baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
    apiKey: "unused",
    maxRetries: 0,
  });
  const base = {
    model: "stories260K",
    instructions: "You tell stories.",
    input: "Once upon a time",
    max_output_tokens: 16,
    temperature: 0,
  };
  try {
    let first: OpenAI.Responses.Response | undefined;
    await t.step("responses.create: a message item, incomplete at max_output_tokens", async () => {
      first = await client.responses.create(base);
      assert.match(first.id, /^resp_/);
      assert.equal(first.object, "response");
      assert.equal(first.status, "incomplete");
      assert.equal(first.incomplete_details?.reason, "max_output_tokens");
      assert.equal(first.output.length, 1);
      const item = first.output[0] as OpenAI.Responses.ResponseOutputMessage;
      assert.equal(item.type, "message");
      assert.equal(item.role, "assistant");
      assert.equal(item.content[0].type, "output_text");
      assert.ok(first.output_text.length > 0, "the SDK's output_text gathers the text");
      assert.equal(first.usage!.output_tokens, 16);
      assert.equal(first.usage!.total_tokens, first.usage!.input_tokens + 16);
      const again = await client.responses.retrieve(first.id);
      assert.equal(again.output_text, first.output_text);
    });

    await t.step(
      "streamed: events in order with sequence numbers, text equal to the whole",
      async () => {
        const stream = await client.responses.create({ ...base, stream: true });
        const types: string[] = [];
        let seq = -1;
        let text = "";
        let final: OpenAI.Responses.Response | undefined;
        for await (const event of stream) {
          types.push(event.type);
          assert.equal(event.sequence_number, seq + 1, "sequence numbers count up from 0");
          seq = event.sequence_number;
          if (event.type === "response.output_text.delta") text += event.delta;
          if (event.type === "response.incomplete" || event.type === "response.completed") {
            final = event.response;
          }
        }
        assert.deepEqual(types.slice(0, 4), [
          "response.created",
          "response.in_progress",
          "response.output_item.added",
          "response.content_part.added",
        ]);
        assert.deepEqual(types.slice(-4), [
          "response.output_text.done",
          "response.content_part.done",
          "response.output_item.done",
          "response.incomplete",
        ]);
        assert.equal(text, first!.output_text);
        assert.equal(final?.status, "incomplete");
        const item = final!.output[0] as OpenAI.Responses.ResponseOutputMessage;
        assert.equal((item.content[0] as OpenAI.Responses.ResponseOutputText).text, text);
      },
    );

    await t.step("previous_response_id puts the earlier turn in the prompt", async () => {
      const next = await client.responses.create({
        ...base,
        input: "And then?",
        previous_response_id: first!.id,
      });
      const alone = await client.responses.create({ ...base, input: "And then?" });
      assert.ok(next.usage!.input_tokens > alone.usage!.input_tokens + 16, "the history was sent");
      assert.equal(next.previous_response_id, first!.id);
      await assert.rejects(
        client.responses.create({ ...base, previous_response_id: "resp_unknown" }),
        (e: unknown) =>
          e instanceof OpenAI.BadRequestError && /previous_response_id/.test(e.message),
      );
    });

    await t.step("what a node cannot do is refused by name", async () => {
      await assert.rejects(
        client.responses.create({ ...base, tools: [{ type: "web_search" }] }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /web_search/.test(e.message),
      );
      await assert.rejects(
        client.responses.create({ ...base, reasoning: { effort: "high" } }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /reasoning/.test(e.message),
      );
    });
  } finally {
    await server.shutdown();
  }
});
