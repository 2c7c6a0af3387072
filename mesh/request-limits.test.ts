import assert from "node:assert/strict";
import { parseInferRequest, REQUEST_LIMITS } from "./request-limits.ts";
import { ServiceError } from "./service.ts";

const refused = (frame: unknown, message: RegExp) =>
  assert.throws(
    () => parseInferRequest(frame),
    (err) =>
      err instanceof ServiceError && err.code === "invalid_request" && message.test(err.message),
  );

Deno.test("every param at the edge of its range passes", () => {
  const req = {
    model: "stories260K",
    messages: [
      { role: "system", content: "be brief" },
      { role: "user", content: [{ type: "text", text: "hi" }], name: "ann" },
      { role: "assistant", content: null, tool_calls: [{ id: "1", type: "function" }] },
      { role: "tool", content: "42", tool_call_id: "1" },
    ],
    params: {
      max_tokens: 1,
      temperature: 0,
      top_p: 1,
      top_k: 0,
      min_p: 0,
      repeat_penalty: 100,
      presence_penalty: -100,
      frequency_penalty: 100,
      seed: -1,
      stop: Array.from({ length: 16 }, () => "é".repeat(512)), // 1024 bytes each
      logprobs: true,
      top_logprobs: 20,
    },
  };
  assert.equal(parseInferRequest(req), req);
  assert.ok(parseInferRequest({ model: "m", prompt: "", params: {} }));
});

Deno.test("each limit is refused by name", () => {
  const base = { model: "m", prompt: "x", params: {} };
  refused(null, /not a JSON object/);
  refused({ ...base, model: "" }, /request\.model is missing/);
  refused({ ...base, model: "m".repeat(513) }, /request\.model is longer than 512/);
  refused({ model: "m", params: {} }, /exactly one of messages and prompt/);
  refused({ ...base, prompt: 5 }, /request\.prompt is not a string/);
  refused({ ...base, params: [] }, /request\.params is not an object/);
  refused({ ...base, params: { top_logprobs: 21 } }, /params\.top_logprobs .* 0 to 20; got 21/);
  refused({ ...base, params: { max_tokens: 1.5 } }, /params\.max_tokens must be a non-negative/);
  refused({ ...base, params: { max_tokens: null } }, /params\.max_tokens .*; got null/);
  refused({ ...base, params: { top_p: 1.01 } }, /params\.top_p must be a number from 0 to 1/);
  refused({ ...base, params: { top_k: -1 } }, /params\.top_k/);
  refused({ ...base, params: { min_p: "0.1" } }, /params\.min_p/);
  refused(
    { ...base, params: { repeat_penalty: 0 } },
    /params\.repeat_penalty must be a number > 0/,
  );
  refused({ ...base, params: { seed: 2 ** 60 } }, /params\.seed must be an integer/);
  refused({ ...base, params: { logprobs: "yes" } }, /params\.logprobs must be a boolean/);
  refused({ ...base, params: { stop: Array(17).fill("a") } }, /params\.stop .* at most 16/);
  refused({ ...base, params: { stop: ["é".repeat(513)] } }, /params\.stop .* 1024 bytes each/);
  refused({ ...base, params: { stop: [5] } }, /params\.stop/);
  refused({ ...base, params: { ["k".repeat(1000)]: 1 } }, /params\.k{60}… is not supported/);
  const chat = (messages: unknown) => ({ model: "m", messages, params: {} });
  refused(chat([]), /request\.messages is not a non-empty array/);
  refused(
    chat(Array(REQUEST_LIMITS.maxMessages + 1).fill({ role: "user", content: "" })),
    /holds 100001 messages; at most 100000/,
  );
  refused(chat([{ role: 5, content: "x" }]), /messages\[0\]\.role must be a string/);
  refused(chat([{ role: "user", content: 5 }]), /messages\[0\]\.content must be a string/);
  refused(
    chat([{ role: "user", content: Array(1001).fill({ type: "text", text: "" }) }]),
    /at most 1000 parts/,
  );
  refused(chat([{ role: "user", content: [{ text: "x" }] }]), /content\[0\] is not a part/);
  refused(chat([{ role: "user", content: [{ type: "text", text: 1 }] }]), /content\[0\]\.text/);
  refused(chat([{ role: "assistant", content: null, tool_calls: {} }]), /tool_calls must be/);
  refused(chat([{ role: "assistant", content: null, tool_calls: [1] }]), /not an object/);
  refused(chat([{ role: "user", content: "x", name: 1 }]), /messages\[0\]\.name/);
});

Deno.test("logit_bias and a constraint pass in their shapes and are refused out of them", () => {
  const base = { model: "m", prompt: "x", params: {} };
  const ok = (params: Record<string, unknown>) => assert.ok(parseInferRequest({ ...base, params }));
  ok({ logit_bias: { "0": -100, "31999": 100 } });
  ok({ logit_bias: {} });
  ok({ constraint: { type: "json_object" } });
  ok({ constraint: { type: "json_schema", schema: { type: "object" }, strict: true, name: "a" } });
  ok({ constraint: { type: "gbnf", grammar: 'root ::= "yes"' } });
  for (const bias of [[1], { "1": 101 }, { "-1": 1 }, { "1.5": 1 }, { "x": 1 }, { "1": "2" }]) {
    refused({ ...base, params: { logit_bias: bias } }, /params\.logit_bias must be an object of/);
  }
  for (
    const c of [
      "json",
      { type: "xml" },
      { type: "json_object", schema: {} },
      { type: "json_schema" },
      { type: "json_schema", schema: {}, strict: "yes" },
      { type: "gbnf", grammar: 5 },
    ]
  ) {
    refused({ ...base, params: { constraint: c } }, /params\.constraint must be \{"type"/);
  }
});

Deno.test("tools: at most 128 distinct function tools with object schemas, a valid tool_choice", () => {
  const chat = (extra: Record<string, unknown>) => ({
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    params: {},
    ...extra,
  });
  const tool = (name: string, parameters?: unknown) => ({
    type: "function",
    function: { name, description: "d", parameters, strict: true },
  });
  const deep = (n: number): unknown =>
    n === 0 ? {} : { type: "object", properties: { a: deep(n - 1) } };
  const ok = chat({
    tools: [
      ...Array.from({ length: REQUEST_LIMITS.maxTools - 1 }, (_, i) => tool(`f_${i}`)),
      tool("deepest", { type: "object", properties: { a: deep(30) } }),
    ],
    tool_choice: { type: "function", function: { name: "f_0" } },
    parallel_tool_calls: false,
  });
  assert.equal(parseInferRequest(ok), ok);
  for (const choice of ["auto", "none", "required"]) {
    assert.ok(parseInferRequest(chat({ tools: [tool("f")], tool_choice: choice })));
  }
  const many = Array.from({ length: REQUEST_LIMITS.maxTools + 1 }, (_, i) => tool(`f${i}`));
  refused(chat({ tools: many }), /at most 128 tools/);
  refused(chat({ tools: {} }), /at most 128 tools/);
  refused({ model: "m", prompt: "x", params: {}, tools: [tool("f")] }, /tools needs messages/);
  refused(chat({ tools: [{ type: "code_interpreter" }] }), /tools\[0\] is not/);
  refused(chat({ tools: [tool("has space")] }), /function.name must be a distinct name/);
  refused(chat({ tools: [tool("f"), tool("f")] }), /tools\[1\].function.name must be a distinct/);
  refused(
    chat({ tools: [tool("f", { type: "string" })] }),
    /parameters is not a JSON Schema of an/,
  );
  refused(
    chat({ tools: [tool("f", { type: "object", properties: { a: deep(70) } })] }),
    /nested deeper than 64/,
  );
  refused(
    chat({ tools: [{ type: "function", function: { name: "f", description: 1 } }] }),
    /description/,
  );
  refused(chat({ tools: [tool("f")], tool_choice: "sometimes" }), /tool_choice must be/);
  refused(chat({ tool_choice: "required" }), /tool_choice needs tools/);
  refused(
    chat({ tools: [tool("f")], tool_choice: { type: "function", function: { name: "g" } } }),
    /names "g", which is not among the tools/,
  );
  refused(chat({ tools: [tool("f")], parallel_tool_calls: "yes" }), /parallel_tool_calls/);
  const call = (c: unknown) => ({
    model: "m",
    messages: [{ role: "assistant", content: null, tool_calls: [c] }],
    params: {},
  });
  refused(call({ id: "1", function: { name: 7 } }), /tool_calls\[0\].function must have a name/);
  refused(call({ id: "x".repeat(257), function: { name: "f" } }), /tool_calls\[0\].id must be/);
});
