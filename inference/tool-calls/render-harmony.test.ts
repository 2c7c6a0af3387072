import assert from "node:assert/strict";
import { renderToolChat } from "./render.ts";
import type { ChatMessage } from "../chat-template.ts";
import type { ToolFunctionSpec } from "./types.ts";

const TEMPLATE = Deno.readTextFileSync(
  new URL("../../tests/fixtures/templates/openai-gpt-oss-120b.jinja", import.meta.url),
);
const TOOLS: ToolFunctionSpec[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } } },
    },
  },
  { type: "function", function: { name: "get_time" } },
];

Deno.test("harmony render: tools without a description, two calls of one turn each before its result, a forced call's header", () => {
  const text = renderToolChat({
    template: TEMPLATE,
    messages: [
      { role: "user", content: "Weather in Paris and the time?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "c1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris"}' },
          },
          { id: "c2", type: "function", function: { name: "get_time", arguments: "{}" } },
        ],
      },
      // Results in another order than the calls: each still follows its own call.
      { role: "tool", tool_call_id: "c2", content: "12:00" },
      { role: "tool", tool_call_id: "c1", content: "Sunny" },
    ],
    tools: TOOLS,
    tool_choice: { type: "function", function: { name: "get_time" } },
    addGenerationPrompt: true,
    now: () => new Date(0),
  });
  assert.ok(text.includes("// \ntype get_time = () => any;"), text);
  const tail = text.slice(text.indexOf("<|start|>user"));
  assert.equal(
    tail,
    "<|start|>user<|message|>Weather in Paris and the time?<|end|>" +
      "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>" +
      '{"city": "Paris"}<|call|>' +
      '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"Sunny"<|end|>' +
      "<|start|>assistant to=functions.get_time<|channel|>commentary json<|message|>{}<|call|>" +
      '<|start|>functions.get_time to=assistant<|channel|>commentary<|message|>"12:00"<|end|>' +
      "<|start|>assistant<|channel|>commentary to=functions.get_time <|constrain|>json<|message|>",
  );
});

Deno.test("harmony render: a call's reasoning sent back shows before it until an answer follows", () => {
  const call = {
    role: "assistant",
    content: "ignored beside reasoning",
    reasoning_content: "Need the weather.",
    tool_calls: [{
      id: "c1",
      type: "function",
      function: { name: "get_weather", arguments: "{}" },
    }],
  };
  const result = { role: "tool", tool_call_id: "c1", content: "Sunny" };
  const user = { role: "user", content: "Weather?" };
  const render = (messages: ChatMessage[]) =>
    renderToolChat({ template: TEMPLATE, messages, tools: TOOLS, addGenerationPrompt: true });
  const pending = render([user, call, result]);
  assert.ok(
    pending.includes(
      "<|start|>assistant<|channel|>analysis<|message|>Need the weather.<|end|>" +
        "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{}<|call|>",
    ),
    pending,
  );
  assert.ok(!pending.includes("ignored"), pending);
  const answered = render([user, call, result, { role: "assistant", content: "Sunny." }, user]);
  assert.ok(!answered.includes("Need the weather."), answered);
});
