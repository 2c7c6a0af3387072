import assert from "node:assert/strict";
import { detectToolFormat } from "./format.ts";
import { toolCallPlan } from "./plan.ts";
import type { ToolFunctionSpec } from "./types.ts";

const FIXTURES = new URL("../../tests/fixtures/templates/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

const CITY = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
const TOOLS: ToolFunctionSpec[] = [
  { type: "function", function: { name: "get_weather", parameters: CITY } },
  { type: "function", function: { name: "get_time" } },
];
const QWEN = fixture("Qwen-Qwen2.5-7B-Instruct.jinja");
const LLAMA = fixture("meta-llama-Llama-3.1-8B-Instruct.jinja");
const MISTRAL = fixture("mistralai-Mistral-Nemo-Instruct-2407.jinja");

const call = (name: string, key: string, params: unknown) => ({
  type: "object",
  properties: { name: { type: "string", const: name }, [key]: params },
  required: ["name", key],
  additionalProperties: false,
});

Deno.test("the format is read from the template's own call syntax", () => {
  assert.equal(detectToolFormat(QWEN), "hermes");
  assert.equal(detectToolFormat(LLAMA), "llama3");
  assert.equal(detectToolFormat(fixture("meta-llama-Llama-3.2-3B-Instruct.jinja")), "llama3");
  assert.equal(detectToolFormat(MISTRAL), "mistral");
  assert.equal(detectToolFormat(fixture("google-gemma-2-2b-it.jinja")), "generic");
  assert.equal(detectToolFormat(undefined), "generic");
});

Deno.test("no plan without tools or with tool_choice none", () => {
  assert.equal(toolCallPlan(QWEN, {}), undefined);
  assert.equal(toolCallPlan(QWEN, { tools: [] }), undefined);
  assert.equal(toolCallPlan(QWEN, { tools: TOOLS, tool_choice: "none" }), undefined);
});

Deno.test("auto on a template with tools: parsed, not constrained", () => {
  const plan = toolCallPlan(QWEN, { tools: TOOLS })!;
  assert.deepEqual(plan, {
    format: "hermes",
    offered: TOOLS,
    names: ["get_weather", "get_time"],
    prefill: "",
    forced: false,
    parallel: true,
  });
});

Deno.test("required and a named function: a prefill and the call's schema, per format", () => {
  const anyTool = (key: string) => ({
    anyOf: [call("get_weather", key, CITY), call("get_time", key, { type: "object" })],
  });
  const hermes = toolCallPlan(QWEN, { tools: TOOLS, tool_choice: "required" })!;
  assert.equal(hermes.prefill, "<tool_call>\n");
  assert.deepEqual(hermes.schema, anyTool("arguments"));
  assert.equal(hermes.forced, true);
  const llama = toolCallPlan(LLAMA, { tools: TOOLS, tool_choice: "required" })!;
  assert.equal(llama.prefill, "");
  assert.deepEqual(llama.schema, anyTool("parameters"));
  const named = toolCallPlan(MISTRAL, {
    tools: TOOLS,
    tool_choice: { type: "function", function: { name: "get_weather" } },
    parallel_tool_calls: false,
  })!;
  assert.deepEqual(named.names, ["get_weather"]);
  assert.equal(named.prefill, "[TOOL_CALLS]");
  assert.deepEqual(named.schema, {
    type: "array",
    items: call("get_weather", "arguments", CITY),
    minItems: 1,
    maxItems: 1,
  });
});

Deno.test("generic: the whole answer is JSON, a call or a response (auto), a call (required)", () => {
  const calls = (maxItems?: number) => ({
    type: "object",
    properties: {
      tool_calls: {
        type: "array",
        items: call("get_weather", "arguments", CITY),
        minItems: 1,
        ...(maxItems ? { maxItems } : {}),
      },
    },
    required: ["tool_calls"],
    additionalProperties: false,
  });
  const tools = [TOOLS[0]];
  const auto = toolCallPlan(undefined, { tools })!;
  assert.equal(auto.format, "generic");
  assert.equal(auto.forced, false);
  assert.deepEqual(auto.schema, {
    anyOf: [calls(), {
      type: "object",
      properties: { response: { type: "string" } },
      required: ["response"],
      additionalProperties: false,
    }],
  });
  // A parameters schema without a type is still one of an object (OpenAI's arguments are one).
  const untyped = toolCallPlan(undefined, {
    tools: [{ type: "function", function: { name: "f", parameters: { properties: {} } } }],
    tool_choice: "required",
  })!;
  const list = (untyped.schema!.properties as Record<string, Record<string, unknown>>).tool_calls;
  const item = list.items as { properties: Record<string, unknown> };
  assert.deepEqual(item.properties.arguments, { type: "object", properties: {} });
  const required = toolCallPlan(undefined, {
    tools,
    tool_choice: "required",
    parallel_tool_calls: false,
  })!;
  assert.equal(required.prefill, "");
  assert.deepEqual(required.schema, calls(1));
});
