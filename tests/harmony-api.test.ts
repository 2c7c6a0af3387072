/**
 * gpt-oss's harmony answers through the HTTP API, end to end on a real engine: stories260K's
 * weights under gpt-oss's chat template, its output forced by a GBNF grammar (set on each request
 * as it reaches the serving node's service, as llama.cpp's `grammar` field would) to what gpt-oss
 * writes (its tokens spell the harmony markers byte by byte). The analysis channel comes back as
 * OpenAI's `reasoning_content`, Anthropic's thinking block and Ollama's `thinking`; a call to a
 * function as `tool_calls`; the final channel as the content, in whole answers and streams.
 */
import assert from "node:assert/strict";
import { createCpuEngine, type Engine } from "../inference/mod.ts";
import {
  createLocalService,
  type InferenceService,
  type InferRequest,
  type LocalService,
} from "../mesh/mod.ts";
import { createNodeApp } from "../web/mod.ts";
import { readSse } from "../web/sse.ts";
import { STORIES } from "./support/fixtures.ts";

const TEMPLATE = Deno.readTextFileSync(
  new URL("./fixtures/templates/openai-gpt-oss-120b.jinja", import.meta.url),
);

const ANSWER = "<|channel|>analysis<|message|>User greets. Reply.<|end|>" +
  "<|start|>assistant<|channel|>final<|message|>Hello there!";
const CALL = "<|channel|>analysis<|message|>Need the weather.<|end|>" +
  "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json" +
  '<|message|>{"city":"Paris"}';
const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/**
 * The service, every answer forced to `output` by a GBNF grammar whose only sentence it is; the
 * requests it saw in `seen`.
 */
function forcing(
  service: InferenceService,
  output: () => string,
  seen: InferRequest[],
): InferenceService {
  return Object.assign(Object.create(service), {
    infer: ((req, signal, requester) => {
      seen.push(req);
      const constraint = { type: "gbnf" as const, grammar: `root ::= ${JSON.stringify(output())}` };
      return service.infer({ ...req, params: { ...req.params, constraint } }, signal, requester);
    }) satisfies InferenceService["infer"],
  });
}

let engine: Engine | undefined;
async function gptOssService(): Promise<LocalService> {
  engine ??= await createCpuEngine({ path: STORIES, ctxSize: 2048 });
  const model = {
    ...engine,
    metadata: { ...engine.metadata, "tokenizer.chat_template": TEMPLATE },
  };
  return createLocalService({ engine: model, id: "gpt-oss" });
}

function post(path: string, body: Record<string, unknown>): Request {
  return new Request(`http://localhost${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-oss", max_tokens: 400, ...body }),
  });
}

const user = [{ role: "user", content: "What is the weather in Paris?" }];

Deno.test("harmony over HTTP: OpenAI, Anthropic and Ollama get reasoning, calls and content apart", async (t) => {
  const service = await gptOssService();
  let output = ANSWER;
  const seen: InferRequest[] = [];
  const app = createNodeApp({ service: forcing(service, () => output, seen) });
  try {
    await t.step("OpenAI chat: reasoning_content, a tool call, content null", async () => {
      output = CALL;
      const res = await app.fetch(post("/v1/chat/completions", {
        messages: user,
        tools: [WEATHER],
      }));
      assert.equal(res.status, 200);
      const choice = (await res.json()).choices[0];
      assert.equal(choice.finish_reason, "tool_calls");
      assert.equal(choice.message.content, null);
      assert.equal(choice.message.reasoning_content, "Need the weather.");
      assert.equal(choice.message.tool_calls.length, 1);
      assert.equal(choice.message.tool_calls[0].type, "function");
      assert.deepEqual(choice.message.tool_calls[0].function, {
        name: "get_weather",
        arguments: '{"city":"Paris"}',
      });
    });

    await t.step("OpenAI chat, streamed without tools: reasoning and content deltas", async () => {
      output = ANSWER;
      const res = await app.fetch(post("/v1/chat/completions", { messages: user, stream: true }));
      assert.equal(res.status, 200);
      let reasoning = "";
      let content = "";
      let finish: unknown;
      for await (const data of readSse(res.body!)) {
        if (data === "[DONE]") break;
        const choice = JSON.parse(data).choices[0];
        reasoning += choice.delta.reasoning_content ?? "";
        content += choice.delta.content ?? "";
        finish = choice.finish_reason ?? finish;
      }
      assert.deepEqual([reasoning, content, finish], [
        "User greets. Reply.",
        "Hello there!",
        "stop",
      ]);
    });

    await t.step("OpenAI chat, cut off by max_tokens inside the final message", async () => {
      output = ANSWER + " And a long tail that max_tokens cuts off.";
      const res = await app.fetch(post("/v1/chat/completions", { messages: user, max_tokens: 80 }));
      const choice = (await res.json()).choices[0];
      assert.equal(choice.finish_reason, "length");
      assert.equal(choice.message.reasoning_content, "User greets. Reply.");
      assert.ok(!choice.message.content.includes("<|"), choice.message.content);
    });

    await t.step(
      "Anthropic messages: a thinking block, then the text; streamed the same",
      async () => {
        output = ANSWER;
        const body = { messages: user };
        const whole = await (await app.fetch(post("/v1/messages", body))).json();
        assert.deepEqual(whole.content, [
          { type: "thinking", thinking: "User greets. Reply.", signature: "" },
          { type: "text", text: "Hello there!" },
        ]);
        const res = await app.fetch(post("/v1/messages", { ...body, stream: true }));
        const blocks: Record<string, unknown>[] = [];
        for await (const data of readSse(res.body!)) {
          const ev = JSON.parse(data);
          if (ev.type === "content_block_start") blocks.push({ ...ev.content_block });
          if (ev.type === "content_block_delta") {
            const b = blocks[ev.index];
            if (ev.delta.type === "thinking_delta") b.thinking += ev.delta.thinking;
            if (ev.delta.type === "text_delta") b.text += ev.delta.text;
            if (ev.delta.type === "signature_delta") b.signature = ev.delta.signature;
          }
        }
        assert.deepEqual(blocks, whole.content);
      },
    );

    await t.step("Ollama chat: message.thinking and a call", async () => {
      output = CALL;
      const res = await app.fetch(post("/api/chat", {
        messages: user,
        tools: [WEATHER],
        stream: false,
        options: { num_predict: 400 },
      }));
      const out = await res.json();
      assert.equal(out.message.thinking, "Need the weather.", JSON.stringify(out));
      assert.deepEqual(out.message.tool_calls, [
        { function: { name: "get_weather", arguments: { city: "Paris" } } },
      ]);
      assert.equal(out.message.content, "");
    });

    await t.step(
      "the reasoning sent back with a call reaches the template, in each API",
      async () => {
        output = ANSWER;
        const call = {
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        };
        const openai = await app.fetch(post("/v1/chat/completions", {
          messages: [
            ...user,
            {
              role: "assistant",
              content: null,
              reasoning_content: "Need the weather.",
              tool_calls: [call],
            },
            { role: "tool", tool_call_id: "call_1", content: "Sunny" },
          ],
          tools: [WEATHER],
        }));
        assert.equal(openai.status, 200);
        assert.equal((await openai.json()).choices[0].message.content, "Hello there!");
        // Anthropic clients send the thinking block back as they got it.
        const anthropic = await app.fetch(post("/v1/messages", {
          messages: [
            ...user,
            {
              role: "assistant",
              content: [
                { type: "thinking", thinking: "Need the weather.", signature: "" },
                { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
              ],
            },
            {
              role: "user",
              content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "Sunny" }],
            },
          ],
          tools: [{ name: "get_weather", input_schema: WEATHER.function.parameters }],
        }));
        assert.equal(anthropic.status, 200, await anthropic.clone().text());
        const ollama = await app.fetch(post("/api/chat", {
          messages: [
            ...user,
            {
              role: "assistant",
              content: "",
              thinking: "Need the weather.",
              tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
            },
            { role: "tool", content: "Sunny", tool_name: "get_weather" },
          ],
          tools: [WEATHER],
          stream: false,
        }));
        assert.equal(ollama.status, 200, await ollama.clone().text());
        for (const req of seen.slice(-3)) {
          assert.equal(req.messages![1].reasoning_content, "Need the weather.");
        }
      },
    );
  } finally {
    service.close();
  }
});
