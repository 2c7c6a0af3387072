/**
 * The official `openai` SDK, unchanged, against a node served on 127.0.0.1
 * over a LocalService on stories260K: what clients of llama.cpp's server
 * and Ollama do, end to end over real HTTP.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createCpuEngine, renderChat } from "../inference/mod.ts";
import { createLocalService, type GenerationEnd } from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { STORIES } from "./helpers.ts";
import { eventually } from "./support/poll.ts";

Deno.test("openai SDK against a served node on stories260K", async (t) => {
  const engine = await createCpuEngine({ path: STORIES, ctxSize: 256 });
  const ends: GenerationEnd[] = [];
  const service = createLocalService(
    { engine, id: "stories260K" },
    { onGenerationEnd: (e) => ends.push(e) },
  );
  const app = createNodeApp({ service });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const client = new OpenAI({
    baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
    apiKey: "unused",
    maxRetries: 0,
  });
  const messages = [{ role: "user" as const, content: "Once upon a time" }];
  try {
    await t.step("chat, non-stream: text and usage counted on the ChatML prompt", async () => {
      const r = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 12,
        temperature: 0,
      });
      assert.equal(r.object, "chat.completion");
      assert.equal(r.choices[0].message.role, "assistant");
      assert.ok(r.choices[0].message.content!.length > 0);
      assert.equal(r.choices[0].finish_reason, "length");
      // No template in stories260K: the prompt is ChatML, tokenized with BOS.
      const prompt = renderChat({ messages, addGenerationPrompt: true });
      assert.equal(r.usage!.prompt_tokens, engine.tokenizer.encode(prompt).length);
      assert.equal(r.usage!.completion_tokens, 12);
      assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 12);
    });

    await t.step("chat, stream: deltas add up to the non-stream text; usage last", async () => {
      const whole = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 16,
        temperature: 0,
      });
      const stream = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 16,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let role: string | undefined;
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        role ??= choice?.delta.role;
        text += choice?.delta.content ?? "";
        finish = choice?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(role, "assistant");
      assert.equal(text, whole.choices[0].message.content);
      assert.equal(finish, "length");
      assert.deepEqual(usage, whole.usage);
    });

    await t.step("completions: text_completion with usage", async () => {
      const r = await client.completions.create({
        model: "stories260K",
        prompt: "Lily went to the park",
        max_tokens: 10,
        temperature: 0,
      });
      assert.equal(r.object, "text_completion");
      assert.ok(r.choices[0].text.length > 0);
      assert.equal(r.usage!.prompt_tokens, engine.tokenizer.encode("Lily went to the park").length);
      assert.equal(r.usage!.completion_tokens, 10);
    });

    await t.step("models list", async () => {
      const ids = [];
      for await (const m of client.models.list()) ids.push(m.id);
      assert.deepEqual(ids, ["stories260K"]);
    });

    await t.step("unknown model: the SDK's NotFoundError", async () => {
      await assert.rejects(
        client.chat.completions.create({ model: "gpt-7", messages }),
        (err: unknown) => {
          assert.ok(err instanceof OpenAI.NotFoundError);
          assert.equal(err.status, 404);
          assert.equal(err.code, "model_not_found");
          return true;
        },
      );
    });

    await t.step("temperature 0 is deterministic", async () => {
      const run = async () =>
        (await client.completions.create({
          model: "stories260K",
          prompt: "Once upon a time",
          max_tokens: 24,
          temperature: 0,
        })).choices[0].text;
      const a = await run();
      assert.equal(await run(), a);
    });

    await t.step("stop strings end the text before the stop", async () => {
      const free = (await client.completions.create({
        model: "stories260K",
        prompt: "Once upon a time",
        max_tokens: 40,
        temperature: 0,
      })).choices[0].text;
      // Stop on a word the greedy continuation really contains.
      const word = free.trim().split(/\s+/)[2];
      const r = await client.completions.create({
        model: "stories260K",
        prompt: "Once upon a time",
        max_tokens: 40,
        temperature: 0,
        stop: [word],
      });
      assert.equal(r.choices[0].finish_reason, "stop");
      assert.equal(r.choices[0].text, free.slice(0, free.indexOf(word)));
    });

    await t.step("n, logit_bias and response_format: choices, a ban, a parsed schema", async () => {
      const schema = {
        type: "object",
        properties: { mood: { type: "string", enum: ["happy", "sad"] } },
        required: ["mood"],
        additionalProperties: false,
      };
      const r = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 30,
        n: 3,
        seed: 11,
        response_format: { type: "json_schema", json_schema: { name: "m", schema, strict: true } },
      });
      assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
      for (const c of r.choices) {
        assert.ok(["happy", "sad"].includes(JSON.parse(c.message.content!).mood));
      }
      const stream = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 8,
        temperature: 0,
        n: 2,
        stream: true,
      });
      const texts = ["", ""];
      for await (const chunk of stream) {
        for (const c of chunk.choices) texts[c.index] += c.delta.content ?? "";
      }
      assert.equal(texts[0], texts[1], "greedy: the same twice");
      // The greedy first token (every id whose piece it is), banned: it never comes.
      const greedy = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 8,
        temperature: 0,
        logprobs: true,
      });
      const first = greedy.choices[0].logprobs!.content![0].token;
      const piece = (id: number) => {
        const d = engine.tokenizer.createDecoder();
        return d.push(id) + d.flush();
      };
      const ids = [...Array(engine.tokenizer.vocabSize).keys()].filter((id) => piece(id) === first);
      const banned = await client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 8,
        temperature: 0,
        logprobs: true,
        logit_bias: Object.fromEntries(ids.map((id) => [id, -100])),
      });
      assert.ok(banned.choices[0].logprobs!.content!.every((t) => t.token !== first));
    });

    await t.step("a client that aborts mid-stream stops the generation on the node", async () => {
      const controller = new AbortController();
      const stream = await client.completions.create({
        model: "stories260K",
        prompt: "Once",
        max_tokens: 200,
        temperature: 0,
        stream: true,
      }, { signal: controller.signal });
      const before = ends.length;
      try {
        for await (const _ of stream) controller.abort();
      } catch { /* the SDK may end the loop quietly or throw an AbortError */ }
      await eventually(() => ends.length > before, {
        timeoutMs: 5000,
        intervalMs: 10,
        what: "the generation never ended after the abort",
      });
      assert.equal(ends.at(-1)?.finishReason, "cancelled");
      assert.ok(ends.at(-1)!.completionTokens < 200);
    });
  } finally {
    await server.shutdown();
  }
});
