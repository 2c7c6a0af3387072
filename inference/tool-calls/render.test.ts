import assert from "node:assert/strict";
import type { ChatMessage } from "../chat-template.ts";
import { mistralId } from "./history.ts";
import { renderToolChat, type RenderToolChatOptions } from "./render.ts";
import type { ToolFunctionSpec } from "./types.ts";

const FIXTURES = new URL("../../tests/fixtures/templates/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

const TOOLS: ToolFunctionSpec[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather of a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
  {
    type: "function",
    function: { name: "get_time", parameters: { type: "object", properties: {} } },
  },
];

/** A call of both tools at once (arguments as OpenAI sends them: JSON text) and both results. */
const HISTORY: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Weather and time in Paris?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [
      {
        id: "call_abc",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris"}' },
      },
      { id: "call_def", type: "function", function: { name: "get_time", arguments: "{}" } },
    ],
  },
  { role: "tool", tool_call_id: "call_abc", content: '{"temp":21}' },
  { role: "tool", tool_call_id: "call_def", content: "12:00" },
];

const now = () => new Date(2025, 0, 15);

function render(template: string | undefined, extra: Partial<RenderToolChatOptions> = {}): string {
  return renderToolChat({
    template,
    messages: HISTORY,
    tools: TOOLS,
    bosToken: "<s>",
    eosToken: "</s>",
    now,
    ...extra,
  });
}

Deno.test("Qwen 2.5 (hermes): tools in its system turn, past calls with object arguments", () => {
  const template = fixture("Qwen-Qwen2.5-7B-Instruct.jinja");
  const out = render(template);
  assert.ok(out.startsWith("<|im_start|>system\nBe brief.\n\n# Tools\n"), out);
  assert.ok(
    out.includes(
      '<tools>\n{"type": "function", "function": {"name": "get_weather", "description": ' +
        '"Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": ' +
        '"string"}}, "required": ["city"]}}}\n{"type": "function", "function": {"name": ' +
        '"get_time", "parameters": {"type": "object", "properties": {}}}}\n</tools>',
    ),
    out,
  );
  assert.ok(
    out.endsWith(
      "<|im_start|>assistant\n<tool_call>\n" +
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n' +
        '{"name": "get_time", "arguments": {}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n{"temp":21}\n</tool_response>\n<tool_response>\n' +
        "12:00\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
    ),
    out,
  );
  // A forced call: the answer starts inside <tool_call>.
  assert.equal(render(template, { tool_choice: "required" }), out + "<tool_call>\n");
  // none: the tools are not offered, the past calls still render in the model's syntax.
  const none = render(template, { tool_choice: "none" });
  assert.ok(!none.includes("# Tools") && none.includes('"arguments": {"city": "Paris"}'), none);
});

Deno.test("Llama 3.1 and 3.2: tools in the system turn with today's date, one call per turn", () => {
  for (
    const name of [
      "meta-llama-Llama-3.1-8B-Instruct.jinja",
      "meta-llama-Llama-3.2-3B-Instruct.jinja",
    ]
  ) {
    const template = fixture(name);
    const out = render(template);
    assert.ok(
      out.startsWith(
        "<s><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n" +
          "Cutting Knowledge Date: December 2023\nToday Date: 15 Jan 2025\n\n" +
          "You have access to the following functions.",
      ),
      out,
    );
    assert.ok(
      out.includes(
        "}\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n" +
          "Weather and time in Paris?<|eot_id|>",
      ),
      out,
    );
    // The template refuses two calls in one turn: each gets its own.
    assert.ok(
      out.includes(
        "<|start_header_id|>assistant<|end_header_id|>\n\n" +
          '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>' +
          "<|start_header_id|>assistant<|end_header_id|>\n\n" +
          '{"name": "get_time", "parameters": {}}<|eot_id|>' +
          "<|start_header_id|>ipython<|end_header_id|>\n\n",
      ),
      out,
    );
    assert.ok(out.endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n"), out);
    // The call format needs no opening: a forced call is all grammar.
    assert.equal(render(template, { tool_choice: "required" }), out, name);
  }
});

Deno.test("Mistral Nemo: tools before the last user turn, ids of 9 letters or digits", () => {
  const template = fixture("mistralai-Mistral-Nemo-Instruct-2407.jinja");
  const [abc, def] = [mistralId("call_abc"), mistralId("call_def")];
  assert.match(abc, /^[a-zA-Z0-9]{9}$/);
  assert.notEqual(abc, def);
  assert.equal(mistralId("a1b2c3d4e"), "a1b2c3d4e");
  const out = render(template);
  assert.ok(
    out.startsWith('<s>[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather"'),
    out,
  );
  assert.ok(
    out.endsWith(
      "[/AVAILABLE_TOOLS][INST]Weather and time in Paris?[/INST]" +
        `[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "${abc}"}, ` +
        `{"name": "get_time", "arguments": {}, "id": "${def}"}]</s>` +
        `[TOOL_RESULTS]{"content": {"temp":21}, "call_id": "${abc}"}[/TOOL_RESULTS]` +
        `[TOOL_RESULTS]{"content": 12:00, "call_id": "${def}"}[/TOOL_RESULTS]`,
    ),
    out,
  );
  assert.equal(render(template, { tool_choice: "required" }), out + "[TOOL_CALLS]");
});

Deno.test("generic format (no template: ChatML): tools in the system message, calls as JSON", () => {
  const out = render(undefined, { parallel_tool_calls: false });
  const tools = [
    {
      name: "get_weather",
      description: "Weather of a city",
      parameters: TOOLS[0].function.parameters,
    },
    { name: "get_time", parameters: TOOLS[1].function.parameters },
  ].map((t) => JSON.stringify(t)).join("\n");
  assert.equal(
    out,
    "<|im_start|>system\nBe brief.\n\nYou can call these tools (each with a JSON Schema of its " +
      `arguments):\n${tools}\n\nAnswer with one JSON object: either {"tool_calls": [{"name": ` +
      '"<tool name>", "arguments": {<its parameters>}}]} to call one tool, or {"response": ' +
      '"<your reply>"} to reply to the user.<|im_end|>\n' +
      "<|im_start|>user\nWeather and time in Paris?<|im_end|>\n" +
      '<|im_start|>assistant\n{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}},' +
      '{"name":"get_time","arguments":{}}]}<|im_end|>\n' +
      '<|im_start|>user\n{"tool_response":{"name":"get_weather","tool_call_id":"call_abc",' +
      '"content":"{\\"temp\\":21}"}}\n{"tool_response":{"name":"get_time","tool_call_id":' +
      '"call_def","content":"12:00"}}<|im_end|>\n<|im_start|>assistant\n',
  );
  const named = render(undefined, {
    tool_choice: { type: "function", function: { name: "get_time" } },
  });
  assert.ok(named.includes('that calls this tool: {"tool_calls"'), named);
  assert.ok(!named.includes('"name": "get_weather",\n'), "only the named tool is described");
  const none = render(undefined, { tool_choice: "none" });
  assert.ok(!none.includes("You can call these tools") && none.includes('{"tool_response"'), none);
});

Deno.test("generic format on a template with strict roles (Gemma 2): results in one user turn", () => {
  const out = render(fixture("google-gemma-2-2b-it.jinja"));
  assert.ok(out.startsWith("<s><start_of_turn>user\nBe brief.\n\nYou can call these tools"), out);
  assert.ok(
    out.endsWith(
      '<start_of_turn>model\n{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}},' +
        '{"name":"get_time","arguments":{}}]}<end_of_turn>\n<start_of_turn>user\n' +
        '{"tool_response":{"name":"get_weather","tool_call_id":"call_abc","content":' +
        '"{\\"temp\\":21}"}}\n{"tool_response":{"name":"get_time","tool_call_id":"call_def",' +
        '"content":"12:00"}}<end_of_turn>\n<start_of_turn>model\n',
    ),
    out,
  );
});

Deno.test("a chat without tools renders as before", () => {
  const messages: ChatMessage[] = [{ role: "user", content: "Hi" }];
  const template = fixture("Qwen-Qwen2.5-7B-Instruct.jinja");
  assert.equal(
    renderToolChat({ template, messages }),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant." +
      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  );
});
