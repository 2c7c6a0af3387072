/**
 * The serving side of gpt-oss's harmony output: with or without tools, its analysis channel comes
 * out as `reasoning` on the token events, its headers' control tokens (decoded to nothing) are
 * read by the parser, and a call becomes a tool_call event.
 */
import assert from "node:assert/strict";
import { createToolCallLayer, type RunRequest } from "./tool-calls-stream.ts";
import type { DoneEvent, InferEvent, InferRequest, TokenEvent, ToolSpec } from "./service.ts";
import { doneEvent } from "../tests/support/fake-service.ts";

const TEMPLATE = Deno.readTextFileSync(
  new URL("../tests/fixtures/templates/openai-gpt-oss-120b.jinja", import.meta.url),
);
const TOOLS: ToolSpec[] = [{ type: "function", function: { name: "get_weather" } }];

// A harmony vocabulary in small: its markers are control tokens (decoded to nothing), except
// <|end|>, which llama.cpp (and inference/tokenizer/vocab.ts) render as text.
const SPECIAL = ["<|start|>", "<|channel|>", "<|message|>", "<|constrain|>"];
const tokenizer = {
  encode: (t: string) =>
    SPECIAL.includes(t) ? [SPECIAL.indexOf(t)] : [...t].map((c) => 1000 + c.charCodeAt(0)),
  decode: (ids: number[]) =>
    ids.length === 1 && ids[0] < SPECIAL.length
      ? ""
      : String.fromCharCode(...ids.map((i) => i - 1000)),
};

/** The output as token events: markers as their control tokens, text as one token a piece. */
function tokens(pieces: string[]): TokenEvent[] {
  return pieces.map((p, i) =>
    SPECIAL.includes(p)
      ? { type: "token", text: "", id: SPECIAL.indexOf(p) }
      : { type: "token", text: p, id: 100 + i }
  );
}

function done(tail?: string): DoneEvent {
  return doneEvent(5, 9, "stop", tail);
}

async function answer(pieces: string[], req: Partial<InferRequest> = {}, tail?: string) {
  let ids = 0;
  const layer = createToolCallLayer({
    template: TEMPLATE,
    tokenizer,
    constrains: true,
    newId: () => `call_${ids++}`,
  });
  const run: RunRequest = async function* () {
    yield* tokens(pieces);
    yield done(tail);
  };
  const out: InferEvent[] = [];
  const base: InferRequest = {
    model: "gpt-oss",
    messages: [{ role: "user", content: "hi" }],
    params: { max_tokens: 99 },
  };
  for await (const e of layer({ ...base, ...req }, run)) out.push(e);
  return out;
}

Deno.test("harmony without tools: reasoning apart from the text, token for token", async () => {
  const out = await answer([
    "<|channel|>",
    "analysis",
    "<|message|>",
    "Greet",
    " back.",
    "<|end|>",
    "<|start|>",
    "assistant",
    "<|channel|>",
    "final",
    "<|message|>",
    "Hello",
    "!",
  ]);
  const toks = out.filter((e): e is TokenEvent => e.type === "token");
  assert.equal(toks.length, 13, "every token keeps its event");
  assert.deepEqual(toks.map((e) => e.reasoning ?? ""), [
    "",
    "",
    "",
    "Greet",
    " back.",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
  ]);
  assert.equal(toks.map((e) => e.text).join(""), "Hello!");
  assert.equal((out.at(-1) as DoneEvent).finish_reason, "stop");
});

Deno.test("harmony with tools: a call after reasoning is a tool_call; held reasoning ends in tail_reasoning", async () => {
  const out = await answer([
    "<|channel|>",
    "analysis",
    "<|message|>",
    "Need weather.",
    "<|end|>",
    "<|start|>",
    "assistant",
    "<|channel|>",
    "commentary to=functions.get_weather ",
    "<|constrain|>",
    "json",
    "<|message|>",
    '{"city":',
    '"Paris"}',
  ], { tools: TOOLS });
  assert.deepEqual(out.filter((e) => e.type === "tool_call"), [{
    type: "tool_call",
    index: 0,
    id: "call_0",
    name: "get_weather",
    arguments: '{"city":"Paris"}',
  }]);
  assert.equal((out.at(-1) as DoneEvent).finish_reason, "tool_calls");
  // Cut off where "<|e" may start <|end|>: released at the end as reasoning.
  const cut = await answer(["<|channel|>", "analysis", "<|message|>", "Hm <|e"]);
  const reasoning = cut.map((e) => e.type === "token" ? e.reasoning ?? "" : "").join("");
  assert.deepEqual([reasoning, (cut.at(-1) as DoneEvent).tail_reasoning], ["Hm ", "<|e"]);
});

Deno.test("harmony: a plain prompt (no messages) is not read", async () => {
  let ids = 0;
  const layer = createToolCallLayer({
    template: TEMPLATE,
    tokenizer,
    constrains: true,
    newId: () => `call_${ids++}`,
  });
  const req: InferRequest = { model: "m", prompt: "x", params: {} };
  let seen: InferRequest | undefined;
  const run: RunRequest = async function* (r) {
    seen = r;
    yield { type: "token", text: "<|channel|>analysis", id: 1 };
    yield done();
  };
  const out: InferEvent[] = [];
  for await (const e of layer(req, run)) out.push(e);
  assert.equal(seen, req);
  assert.equal((out[0] as TokenEvent).text, "<|channel|>analysis");
});
