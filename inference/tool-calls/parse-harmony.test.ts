import assert from "node:assert/strict";
import { createToolCallParser } from "./parse.ts";
import { harmonyCallHeader, toolCallPlan } from "./plan.ts";
import type { ParsedToolCall } from "./types.ts";

const NAMES = ["get_weather", "get_time"];

interface Outcome {
  text: string;
  reasoning: string;
  calls: ParsedToolCall[];
}

function run(pieces: string[], prefill = "", names = NAMES): Outcome {
  const parser = createToolCallParser({ format: "harmony", names, prefill });
  const out: Outcome = { text: "", reasoning: "", calls: [] };
  for (const step of [...pieces.map((p) => parser.push(p)), parser.end()]) {
    out.text += step.text;
    out.reasoning += step.reasoning ?? "";
    out.calls.push(...step.calls);
  }
  return out;
}

/** The same outcome whole, a character at a time, and in random pieces. */
function parse(output: string, prefill = "", names = NAMES): Outcome {
  const whole = run([output], prefill, names);
  assert.deepEqual(run([...output], prefill, names), whole, "fed a character at a time");
  let seed = output.length;
  for (let round = 0; round < 5; round++) {
    const pieces: string[] = [];
    for (let at = 0; at < output.length;) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const n = 1 + (seed % 9);
      pieces.push(output.slice(at, at + n));
      at += n;
    }
    assert.deepEqual(run(pieces, prefill, names), whole, `pieces ${JSON.stringify(pieces)}`);
  }
  return whole;
}

const weather = (city: string): ParsedToolCall => ({
  name: "get_weather",
  arguments: JSON.stringify({ city }),
});

// As gpt-oss-20b writes them after the generation prompt's `<|start|>assistant` (the tokens that
// end generation, <|return|> and <|call|>, are not in the output).
const ANSWER = "<|channel|>analysis<|message|>User greets. Reply politely.<|end|>" +
  "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?";
const CALL = "<|channel|>analysis<|message|>Need weather for Paris; call get_weather.<|end|>" +
  '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}';

Deno.test("harmony: analysis is reasoning, final is the content", () => {
  assert.deepEqual(parse(ANSWER), {
    text: "Hello! How can I help?",
    reasoning: "User greets. Reply politely.",
    calls: [],
  });
  // <|return|> when a client's stop list lets it through.
  assert.deepEqual(parse(ANSWER + "<|return|>").text, "Hello! How can I help?");
});

Deno.test("harmony: a call with JSON arguments after reasoning, recipient in either header", () => {
  assert.deepEqual(parse(CALL), {
    text: "",
    reasoning: "Need weather for Paris; call get_weather.",
    calls: [weather("Paris")],
  });
  assert.deepEqual(parse(CALL + "<|call|>").calls, [weather("Paris")]);
  // The recipient in the role header, as the template renders past calls.
  const inRole = ' to=functions.get_time<|channel|>commentary json<|message|>{"tz": "CET"}<|call|>';
  assert.deepEqual(parse(inRole), {
    text: "",
    reasoning: "",
    calls: [{ name: "get_time", arguments: '{"tz":"CET"}' }],
  });
  // Nested arguments are kept, re-serialised compactly.
  const nested = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>" +
    '{"city": "Oslo", "opts": {"units": ["C", "F"], "days": 3}}';
  assert.deepEqual(parse(nested).calls, [{
    name: "get_weather",
    arguments: '{"city":"Oslo","opts":{"units":["C","F"],"days":3}}',
  }]);
});

Deno.test("harmony: several messages: two analyses, a preamble, two calls", () => {
  const out = parse(
    "<|channel|>analysis<|message|>First thought.<|end|>" +
      "<|start|>assistant<|channel|>analysis<|message|> Second.<|end|>" +
      "<|start|>assistant<|channel|>commentary<|message|>Checking both.<|end|>" +
      '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Rome"}<|call|>' +
      "<|start|>assistant<|channel|>commentary to=functions.get_time json<|message|>{}<|call|>",
  );
  assert.deepEqual(out, {
    text: "Checking both.",
    reasoning: "First thought. Second.",
    calls: [weather("Rome"), { name: "get_time", arguments: "{}" }],
  });
});

Deno.test("harmony: streamed, reasoning and content come out as they are written", () => {
  const p = createToolCallParser({ format: "harmony", names: NAMES, prefill: "" });
  assert.deepEqual(p.push("<|channel|>"), { text: "", calls: [] });
  assert.deepEqual(p.push("analysis"), { text: "", calls: [] });
  assert.deepEqual(p.push("<|message|>"), { text: "", calls: [] });
  assert.deepEqual(p.push("Think"), { text: "", calls: [], reasoning: "Think" });
  // A possible end marker is held back until it is clear.
  assert.deepEqual(p.push("ing <|e"), { text: "", calls: [], reasoning: "ing " });
  assert.deepEqual(p.push("nd|>"), { text: "", calls: [] });
  assert.deepEqual(p.push("<|start|>assistant<|channel|>final<|message|>Hi"), {
    text: "Hi",
    calls: [],
  });
  assert.deepEqual(p.push(" there"), { text: " there", calls: [] });
  assert.deepEqual(p.end(), { text: "", calls: [] });
  // A call's tokens show nothing until it is whole.
  const q = createToolCallParser({ format: "harmony", names: NAMES, prefill: "" });
  assert.deepEqual(
    q.push("<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"),
    { text: "", calls: [] },
  );
  assert.deepEqual(q.push('{"city":'), { text: "", calls: [] });
  assert.deepEqual(q.push('"Oslo"}'), { text: "", calls: [] });
  assert.deepEqual(q.end(), { text: "", calls: [weather("Oslo")] });
});

Deno.test("harmony: cut off by max_tokens: in reasoning, in a header, in a call", () => {
  assert.deepEqual(parse("<|channel|>analysis<|message|>The user wants"), {
    text: "",
    reasoning: "The user wants",
    calls: [],
  });
  assert.deepEqual(parse("<|channel|>analysis<|message|>Done.<|end|><|start|>assistant<|chan"), {
    text: "",
    reasoning: "Done.",
    calls: [],
  });
  assert.deepEqual(parse(ANSWER.slice(0, -5)).text, "Hello! How can I ");
  // A call whose JSON never closed is released as the text it was.
  const cut = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>" +
    '{"city": "Par';
  assert.deepEqual(parse(cut), { text: cut, reasoning: "", calls: [] });
});

Deno.test("harmony: unknown recipients are consumed; text without headers is content", () => {
  assert.deepEqual(
    parse(
      '<|channel|>analysis<|message|>Search.<|end|><|start|>assistant<|channel|>commentary to=browser.search <|constrain|>json<|message|>{"q":"x"}<|call|>' +
        "<|start|>assistant<|channel|>commentary to=functions.rm_rf json<|message|>{}<|call|>",
    ),
    { text: "", reasoning: "Search.", calls: [] },
  );
  // Only the plan's names (a named tool_choice) are calls.
  assert.deepEqual(parse(CALL, "", ["get_time"]).calls, []);
  assert.deepEqual(parse("Hello there, no channels."), {
    text: "Hello there, no channels.",
    reasoning: "",
    calls: [],
  });
  // Text that only began like a header when the output ended is content.
  for (const short of ["t", "to", "<|", "  <|chan"]) {
    assert.deepEqual(parse(short), { text: short, reasoning: "", calls: [] }, short);
  }
  // Whitespace before the first header.
  assert.deepEqual(parse("\n" + ANSWER), {
    text: "Hello! How can I help?",
    reasoning: "User greets. Reply politely.",
    calls: [],
  });
  // A stray commentary before the analysis channel, as gpt-oss-20b sometimes writes.
  assert.deepEqual(
    parse(
      "<|channel|>commentary<|channel|>analysis<|message|>Hm.<|end|><|start|>assistant<|channel|>final<|message|>Ok",
    ),
    { text: "Ok", reasoning: "Hm.", calls: [] },
  );
});

Deno.test("harmony: a forced call opens in the prompt; the output is the arguments", () => {
  const template = "{{ '<|start|>' }}{{ '<|channel|>' }}{{ '<|message|>' }}";
  const tools = [
    {
      type: "function" as const,
      function: { name: "get_weather", parameters: { type: "object" } },
    },
    { type: "function" as const, function: { name: "get_time" } },
  ];
  const plan = toolCallPlan(template, {
    tools,
    tool_choice: { type: "function", function: { name: "get_weather" } },
  })!;
  assert.equal(plan.format, "harmony");
  assert.equal(plan.prefill, harmonyCallHeader("get_weather"));
  assert.deepEqual(plan.schema, { type: "object" });
  assert.deepEqual(parse('{"city": "Lima"}', plan.prefill, plan.names).calls, [weather("Lima")]);
  // A broken forced call is text, without the header the prompt wrote.
  assert.deepEqual(parse("{bad", plan.prefill, plan.names), {
    text: "{bad",
    reasoning: "",
    calls: [],
  });
  // Auto: nothing prefilled, no schema; required among several: asked, not enforced.
  const auto = toolCallPlan(template, { tools })!;
  assert.deepEqual([auto.prefill, auto.schema], ["", undefined]);
  const required = toolCallPlan(template, { tools, tool_choice: "required" })!;
  assert.deepEqual([required.prefill, required.schema, required.forced], ["", undefined, true]);
});
