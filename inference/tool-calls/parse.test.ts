import assert from "node:assert/strict";
import { createToolCallParser } from "./parse.ts";
import type { ParsedToolCall, ToolFormat } from "./types.ts";

const NAMES = ["get_weather", "get_time", "brave_search"];

interface Outcome {
  text: string;
  calls: ParsedToolCall[];
}

/** Feeds `pieces` and ends; everything released, in order. */
function run(format: ToolFormat, pieces: string[], prefill = "", names = NAMES): Outcome {
  const parser = createToolCallParser({ format, names, prefill });
  const out: Outcome = { text: "", calls: [] };
  for (const step of [...pieces.map((p) => parser.push(p)), parser.end()]) {
    out.text += step.text;
    out.calls.push(...step.calls);
  }
  return out;
}

/** The same outcome whole, a character at a time, and in random pieces. */
function parse(format: ToolFormat, output: string, prefill = ""): Outcome {
  const whole = run(format, [output], prefill);
  assert.deepEqual(run(format, [...output], prefill), whole, "fed a character at a time");
  let seed = output.length;
  for (let round = 0; round < 5; round++) {
    const pieces: string[] = [];
    for (let at = 0; at < output.length;) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const n = 1 + (seed % 7);
      pieces.push(output.slice(at, at + n));
      at += n;
    }
    assert.deepEqual(run(format, pieces, prefill), whole, `pieces ${JSON.stringify(pieces)}`);
  }
  return whole;
}

/** Each output is text, as written: no calls. */
function assertText(format: ToolFormat, outputs: string[]): void {
  for (const output of outputs) {
    assert.deepEqual(parse(format, output), { text: output, calls: [] }, output);
  }
}

const weather = (city: string): ParsedToolCall => ({
  name: "get_weather",
  arguments: JSON.stringify({ city }),
});

Deno.test("hermes: calls between text, whitespace between calls dropped, string arguments read", () => {
  const out = parse(
    "hermes",
    'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n' +
      '</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": "{\\"tz\\": \\"CET\\"}"}\n' +
      "</tool_call>\n",
  );
  assert.deepEqual(out, {
    text: "Let me check.\n",
    calls: [weather("Paris"), { name: "get_time", arguments: '{"tz":"CET"}' }],
  });
});

Deno.test("hermes: text streams until a call may start, then waits for the call", () => {
  const parser = createToolCallParser({ format: "hermes", names: NAMES, prefill: "" });
  assert.deepEqual(parser.push("Sure. <tool"), { text: "Sure. ", calls: [] });
  assert.deepEqual(parser.push('_call>{"name": "get_weather", '), { text: "", calls: [] });
  assert.deepEqual(parser.push('"arguments": {"city": "Oslo"}}</tool_'), { text: "", calls: [] });
  assert.deepEqual(parser.push("call>"), { text: "", calls: [weather("Oslo")] });
  assert.deepEqual(parser.push(" Done."), { text: " Done.", calls: [] });
  assert.deepEqual(parser.end(), { text: "", calls: [] });
  // A "<" that opens no call is text once that is clear, or at the end.
  assert.deepEqual(parse("hermes", "a < b and <tool>"), { text: "a < b and <tool>", calls: [] });
});

Deno.test("hermes: a malformed call is text, as written", () => {
  assertText("hermes", [
    '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
    "<tool_call>{not json}</tool_call>",
    '<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>',
    '<tool_call>{"name": "get_weather", "arguments": "no json"}</tool_call>',
    '<tool_call>{"name": "get_weather", "arguments": {"city"',
  ]);
});

Deno.test("hermes: an answer that ends inside a whole call; a prefilled (forced) call", () => {
  const json = '{"name": "get_weather", "arguments": {"city": "Rome"}}';
  assert.deepEqual(parse("hermes", `<tool_call>\n${json}\n`), {
    text: "",
    calls: [weather("Rome")],
  });
  const prefill = "<tool_call>\n";
  assert.deepEqual(parse("hermes", json, prefill), { text: "", calls: [weather("Rome")] });
  assert.deepEqual(parse("hermes", `${json}\n</tool_call>`, prefill), {
    text: "",
    calls: [weather("Rome")],
  });
  // The prompt wrote the opening tag: a broken forced call is text without it.
  assert.deepEqual(parse("hermes", '{"name": "x"}', prefill), { text: '{"name": "x"}', calls: [] });
});

Deno.test("llama3: the answer is the call; several, after <|python_tag|>; built-in call syntax", () => {
  const json = '{"name": "get_weather", "parameters": {"city": "Paris"}}';
  assert.deepEqual(parse("llama3", json), { text: "", calls: [weather("Paris")] });
  assert.deepEqual(
    parse(
      "llama3",
      ` <|python_tag|>${json}; {"type": "function", "name": "get_time", "parameters": {}}`,
    ),
    {
      text: "",
      calls: [weather("Paris"), { name: "get_time", arguments: "{}" }],
    },
  );
  assert.deepEqual(
    parse("llama3", '<|python_tag|>brave_search.call(query="weather in \\"Paris\\"", n=3)'),
    {
      text: "",
      calls: [{ name: "brave_search", arguments: '{"query":"weather in \\"Paris\\"","n":3}' }],
    },
  );
});

Deno.test("llama3: text is let through at once; a call not at the start, or malformed, is text", () => {
  const parser = createToolCallParser({ format: "llama3", names: NAMES, prefill: "" });
  assert.deepEqual(parser.push('{"ans'), { text: '{"ans', calls: [] });
  const p2 = createToolCallParser({ format: "llama3", names: NAMES, prefill: "" });
  assert.deepEqual(p2.push("Hel"), { text: "Hel", calls: [] });
  for (
    const bad of [
      'The call: {"name": "get_weather", "parameters": {}}',
      '{"name": "unknown", "parameters": {}}',
      '{"name": "get_weather", "parameters": 7}',
      '{"name": "get_weather", "parameters": {',
      "<|python_tag|>nope(",
    ]
  ) {
    assert.deepEqual(
      parse("llama3", bad),
      { text: bad.replace("<|python_tag|>", ""), calls: [] },
      bad,
    );
  }
});

Deno.test("mistral: [TOOL_CALLS] and an array of calls, after text; prefilled; malformed", () => {
  const array = '[{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}, ' +
    '{"name": "get_time", "arguments": {}}]';
  assert.deepEqual(parse("mistral", `Checking.[TOOL_CALLS]${array}`), {
    text: "Checking.",
    calls: [weather("Paris"), { name: "get_time", arguments: "{}" }],
  });
  assert.deepEqual(parse("mistral", array, "[TOOL_CALLS]"), {
    text: "",
    calls: [weather("Paris"), { name: "get_time", arguments: "{}" }],
  });
  assertText("mistral", [
    '[TOOL_CALLS][{"name": "nope", "arguments": {}}]',
    "[TOOL_CALLS] not json",
    "[TOOL_CALLS][{",
  ]);
});

Deno.test("generic: tool_calls, tool_call and a bare call; anything else is text", () => {
  assert.deepEqual(
    parse(
      "generic",
      '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, ' +
        '{"name": "get_time", "arguments": {}}]}',
    ),
    { text: "", calls: [weather("Paris"), { name: "get_time", arguments: "{}" }] },
  );
  assert.deepEqual(
    parse("generic", ' {"tool_call": {"name": "get_weather", "arguments": {"city": "X"}}}'),
    { text: "", calls: [weather("X")] },
  );
  assert.deepEqual(parse("generic", '{"name": "get_weather", "arguments": {"city": "X"}}'), {
    text: "",
    calls: [weather("X")],
  });
  assertText("generic", [
    "Hello there",
    '{"foo": 1}',
    '{"tool_calls": [{"name": "nope"}]}',
    '{"tool_calls": [',
  ]);
});

Deno.test("generic: a response's string streams out decoded, escapes and surrogates whole", () => {
  const out = parse("generic", '{"response": "Hi \\"there\\" \\u00e9\\ud83d\\ude00!\\n"}');
  assert.deepEqual(out, { text: 'Hi "there" é😀!\n', calls: [] });
  const parser = createToolCallParser({ format: "generic", names: NAMES, prefill: "" });
  assert.deepEqual(parser.push('{"response"'), { text: "", calls: [] });
  assert.deepEqual(parser.push(': "Once upon'), { text: "Once upon", calls: [] });
  assert.deepEqual(parser.push(" a \\ud83d"), { text: " a ", calls: [] });
  assert.deepEqual(parser.push("\\ude00 time"), { text: "😀 time", calls: [] });
  assert.deepEqual(parser.push('"} trailing'), { text: "", calls: [] });
  assert.deepEqual(parser.end(), { text: "", calls: [] });
  // Cut off by max_tokens: the reply so far.
  assert.deepEqual(parse("generic", '{"response": "Once upon a ti'), {
    text: "Once upon a ti",
    calls: [],
  });
});

Deno.test("only the plan's names are calls (a named tool_choice)", () => {
  const out = run("hermes", ['<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'], "", [
    "get_weather",
  ]);
  assert.deepEqual(out.calls, []);
});
