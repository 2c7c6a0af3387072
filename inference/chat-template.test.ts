import assert from "node:assert/strict";
import {
  type ChatMessage,
  CHATML_TEMPLATE,
  ChatTemplateError,
  renderChat,
  strftime,
  templateParses,
} from "./chat-template.ts";
import { openGguf } from "./gguf.ts";
import { fixturePath } from "../tests/support/fixtures.ts";

const FIXTURES = new URL("../tests/fixtures/templates/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

interface LlamaCppCases {
  conversation: ChatMessage[];
  cases: { name: string; template: string; expected: string; bosToken: string; eosToken: string }[];
}
const llamaCpp: LlamaCppCases = JSON.parse(fixture("llama-cpp-cases.json"));

const CHAT: ChatMessage[] = llamaCpp.conversation;

for (const c of llamaCpp.cases) {
  Deno.test(`llama.cpp oracle: ${c.name}`, () => {
    const out = renderChat({
      template: c.template,
      messages: CHAT,
      bosToken: c.bosToken,
      eosToken: c.eosToken,
    });
    assert.equal(out, c.expected);
  });
}

Deno.test("Llama 3.2 template: system block with today's date from strftime_now", () => {
  const out = renderChat({
    template: fixture("meta-llama-Llama-3.2-3B-Instruct.jinja"),
    messages: [
      { role: "system", content: "You are a helpful assistant" },
      { role: "user", content: "Hello" },
    ],
    bosToken: "<|begin_of_text|>",
    eosToken: "<|eot_id|>",
    now: () => new Date(2024, 6, 26, 12, 0),
  });
  assert.equal(
    out,
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
      "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
      "You are a helpful assistant<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
});

const QWEN_NO_SYSTEM = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. " +
  "You are a helpful assistant.<|im_end|>\n";

Deno.test("Qwen2.5 template: default system prompt, ChatML turns", () => {
  const out = renderChat({
    template: fixture("Qwen-Qwen2.5-7B-Instruct.jinja"),
    messages: [{ role: "user", content: "Hello" }],
  });
  assert.equal(out, QWEN_NO_SYSTEM + "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
});

Deno.test("Qwen2.5 template: tools, a tool call and its response", () => {
  const tool = {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get weather",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  };
  const out = renderChat({
    template: fixture("Qwen-Qwen2.5-7B-Instruct.jinja"),
    tools: [tool],
    messages: [
      { role: "system", content: "S" },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{
          type: "function",
          function: { name: "get_weather", arguments: { city: "Paris" } },
        }],
      },
      { role: "tool", content: '{"temp": 21}' },
    ],
  });
  const toolJson = '{"type": "function", "function": {"name": "get_weather", "description": ' +
    '"Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, ' +
    '"required": ["city"]}}}';
  assert.equal(
    out,
    "<|im_start|>system\nS\n\n# Tools\n\nYou may call one or more functions to assist with the " +
      "user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n" +
      `<tools>\n${toolJson}\n</tools>\n\nFor each function call, return a json object with ` +
      "function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n" +
      '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call><|im_end|>\n' +
      "<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
      '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' +
      "\n</tool_call><|im_end|>\n" +
      '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
      "<|im_start|>assistant\n",
  );
});

Deno.test("Phi-3.5 template, with and without the generation prompt", () => {
  const template = fixture("microsoft-Phi-3.5-mini-instruct.jinja");
  const body = "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n" +
    "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n" +
    "<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n";
  const base = { template, messages: CHAT, bosToken: "<s>", eosToken: "<|endoftext|>" };
  assert.equal(renderChat(base), body + "<|assistant|>\n");
  assert.equal(renderChat({ ...base, addGenerationPrompt: false }), body + "<|endoftext|>");
});

Deno.test("Gemma 2 template: model turns, trimmed content, system folded into the user turn", () => {
  const template = fixture("google-gemma-2-2b-it.jinja");
  const out = renderChat({
    template,
    messages: [
      { role: "user", content: "Hello" },
      { role: "assistant", content: "  Hi there \n" },
      { role: "user", content: "Who?" },
    ],
    bosToken: "<bos>",
    eosToken: "<eos>",
  });
  assert.equal(
    out,
    "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n" +
      "<start_of_turn>user\nWho?<end_of_turn>\n<start_of_turn>model\n",
  );
  // The template raises on a system message, so it is folded into the first user turn.
  assert.equal(
    renderChat({
      template,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }],
      bosToken: "<bos>",
    }),
    "<bos><start_of_turn>user\nBe brief.\nHi<end_of_turn>\n<start_of_turn>model\n",
  );
});

Deno.test("the template stored in a real GGUF (phi-3 vocab) renders", async () => {
  const file = await openGguf(fixturePath("vocab/ggml-vocab-phi-3.gguf"));
  const template = file.metadata["tokenizer.chat_template"];
  assert.equal(typeof template, "string");
  const out = renderChat({ template: template as string, messages: CHAT, bosToken: "<s>" });
  // llama.cpp's expectation for this (Phi-3-mini) template, with the BOS it prints first.
  const phi3 = llamaCpp.cases.find((c) => c.name.startsWith("Phi-3-mini"));
  assert.equal(out, "<s>" + phi3?.expected);
});

Deno.test("Mistral Nemo template: system prompt joins the last user turn", () => {
  const template = fixture("mistralai-Mistral-Nemo-Instruct-2407.jinja");
  const out = renderChat({ template, messages: CHAT, bosToken: "<s>", eosToken: "</s>" });
  assert.equal(
    out,
    "<s>[INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an assistant   </s>" +
      "[INST]You are a helpful assistant\n\nAnother question[/INST]",
  );
  assert.throws(
    () =>
      renderChat({
        template,
        messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }],
      }),
    /chat template rejected the messages: After the optional system message, conversation roles must alternate/,
  );
});

Deno.test("no template, an empty one, or one that does not parse falls back to ChatML", () => {
  const messages: ChatMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];
  const expected = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
    "<|im_start|>assistant\n";
  assert.equal(renderChat({ messages }), expected);
  assert.equal(renderChat({ template: "", messages }), expected);
  assert.equal(renderChat({ template: "{% if %}broken", messages }), expected);
  assert.equal(renderChat({ template: CHATML_TEMPLATE, messages }), expected);
  assert.equal(
    renderChat({ messages, addGenerationPrompt: false }),
    expected.slice(0, -"<|im_start|>assistant\n".length),
  );
  assert.equal(templateParses("{% if %}broken"), false);
  assert.equal(templateParses(CHATML_TEMPLATE), true);
});

Deno.test("OpenAI content arrays: text parts are joined, other parts rejected", () => {
  const out = renderChat({
    messages: [{
      role: "user",
      content: [{ type: "text", text: "Hel" }, { type: "text", text: "lo" }],
    }],
  });
  assert.equal(out, "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  assert.throws(
    () =>
      renderChat({
        messages: [{
          role: "user",
          content: [{ type: "text", text: "look" }, { type: "image_url", image_url: { url: "x" } }],
        }],
      }),
    (err: unknown) =>
      err instanceof ChatTemplateError && /content\[1\] is a "image_url" part/.test(err.message),
  );
});

Deno.test("bad roles and messages are rejected with the offending index", () => {
  assert.throws(
    () => renderChat({ messages: [{ role: "user", content: "a" }, { role: "bot", content: "b" }] }),
    /messages\[1\]\.role must be one of system, user, assistant, tool; got "bot"/,
  );
  assert.throws(() => renderChat({ messages: [] }), /non-empty/);
  assert.throws(
    () => renderChat({ messages: [{ role: "user", content: null }] }),
    /messages\[0\]\.content is missing/,
  );
});

Deno.test("a template failing at render time gives a ChatTemplateError", () => {
  assert.throws(
    () => renderChat({ template: "{{ messages | no_such_filter }}", messages: CHAT }),
    (err: unknown) =>
      err instanceof ChatTemplateError && /chat template failed to render/.test(err.message),
  );
});

Deno.test("strftime covers the directives templates use, in English", () => {
  const d = new Date(2025, 0, 5, 14, 7, 9);
  assert.equal(strftime(d, "%d %b %Y"), "05 Jan 2025");
  assert.equal(strftime(d, "%A, %B %d %H:%M:%S %%"), "Sunday, January 05 14:07:09 %");
  assert.equal(strftime(d, "%I%p %j %Q"), "02PM 005 %Q");
});
