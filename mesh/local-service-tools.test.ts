/**
 * Tool calling end to end on a real engine (stories260K, a weak model): its lack of a template
 * gets the generic format; Qwen's, Llama 3.1's and Mistral Nemo's templates (given to the same
 * weights) their own formats. A forced call always comes back valid against its schema, even on a
 * tight budget, and a long prompt with tools renders the same in the prompt worker.
 */
import assert from "node:assert/strict";
import { createCpuEngine, type Engine } from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { createLocalService, type LocalService } from "./local-service.ts";
import type {
  DoneEvent,
  InferEvent,
  InferRequest,
  ToolCallEvent,
  ToolChoice,
  ToolSpec,
} from "./service.ts";
import { FORECAST_FUNCTION } from "../tests/support/forecast-tool.ts";

let shared: Engine | undefined;
const engine = async () => shared ??= await createCpuEngine({ path: STORIES, ctxSize: 2048 });

const FORECAST: ToolSpec = { type: "function", function: FORECAST_FUNCTION };
const TIME: ToolSpec = { type: "function", function: { name: "get_time" } };

/** The forecast's arguments, checked against its schema by hand. */
function checkForecast(args: string): void {
  const v = JSON.parse(args);
  assert.equal(typeof v, "object", args);
  assert.ok(Object.keys(v).every((k) => ["city", "days", "unit"].includes(k)), args);
  assert.ok(typeof v.city === "string" && v.city.length <= 12, args);
  assert.ok(Number.isInteger(v.days) && v.days >= 1 && v.days <= 7, args);
  assert.ok(v.unit === undefined || v.unit === "C" || v.unit === "F", args);
}

function request(choice: ToolChoice, extra: Partial<InferRequest> = {}): InferRequest {
  return {
    model: "stories260K",
    messages: [{ role: "user", content: "What will the weather be in Paris?" }],
    params: { temperature: 0.8, seed: 3, max_tokens: 80 },
    tools: [FORECAST, TIME],
    tool_choice: choice,
    ...extra,
  };
}

async function run(service: LocalService, req: InferRequest) {
  const events: InferEvent[] = [];
  for await (const e of service.infer(req, new AbortController().signal)) events.push(e);
  const calls = events.filter((e): e is ToolCallEvent => e.type === "tool_call");
  const text = events.map((e) => e.type === "token" ? e.text : "").join("");
  const done = events.at(-1) as DoneEvent;
  assert.equal(done.type, "done", JSON.stringify(done));
  return { calls, text: text + (done.tail ?? ""), done };
}

Deno.test("generic format: required and a named function give valid calls, seed after seed", async () => {
  const service = createLocalService({ engine: await engine(), id: "stories260K" });
  for (let seed = 1; seed <= 4; seed++) {
    const params = { temperature: 1, seed, max_tokens: 80 };
    const required = await run(
      service,
      request("required", { params, parallel_tool_calls: false }),
    );
    assert.equal(required.calls.length, 1, `seed ${seed}`);
    assert.equal(required.text, "", "the call's tokens show no text");
    assert.equal(required.done.finish_reason, "tool_calls");
    const [call] = required.calls;
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.index, 0);
    if (call.name === "get_forecast") checkForecast(call.arguments);
    else assert.equal(call.name, "get_time");
    const named = await run(
      service,
      request({ type: "function", function: { name: "get_forecast" } }, { params }),
    );
    assert.ok(named.calls.length >= 1);
    for (const c of named.calls) {
      assert.equal(c.name, "get_forecast");
      checkForecast(c.arguments);
    }
  }
  service.close();
});

Deno.test("generic format, auto: a reply or calls, always parsed, never JSON shown as text", async () => {
  const service = createLocalService({ engine: await engine(), id: "stories260K" });
  for (let seed = 1; seed <= 4; seed++) {
    const { calls, text, done } = await run(
      service,
      request("auto", { params: { temperature: 1, seed, max_tokens: 60 } }),
    );
    if (calls.length > 0) {
      assert.equal(done.finish_reason, "tool_calls");
      for (const c of calls) if (c.name === "get_forecast") checkForecast(c.arguments);
    } else {
      assert.ok(!text.trimStart().startsWith("{"), `a reply, not its JSON: ${text}`);
    }
  }
  service.close();
});

Deno.test("a forced call on a tight budget still closes valid (the grammar closes it)", async () => {
  const service = createLocalService({ engine: await engine(), id: "stories260K" });
  const { calls, done } = await run(
    service,
    request({ type: "function", function: { name: "get_forecast" } }, {
      // The shortest valid call takes 62 of this vocabulary's tokens.
      params: { temperature: 1, seed: 9, max_tokens: 70 },
    }),
  );
  assert.equal(calls.length, 1);
  checkForecast(calls[0].arguments);
  assert.ok(done.usage.completion_tokens <= 70);
  service.close();
});

Deno.test("templates with tools (Qwen, Llama 3.1, Mistral Nemo) on the same weights: forced calls valid", async () => {
  const e = await engine();
  for (
    const name of [
      "Qwen-Qwen2.5-7B-Instruct.jinja",
      "meta-llama-Llama-3.1-8B-Instruct.jinja",
      "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    ]
  ) {
    const template = await Deno.readTextFile(
      new URL(`../tests/fixtures/templates/${name}`, import.meta.url),
    );
    const model = { ...e, metadata: { ...e.metadata, "tokenizer.chat_template": template } };
    const service = createLocalService({ engine: model, id: "stories260K" });
    const forecast = { type: "function" as const, function: { name: "get_forecast" } };
    for (const choice of ["required", forecast] as ToolChoice[]) {
      const { calls, text, done } = await run(
        service,
        request(choice, { tools: [FORECAST], params: { seed: 2, max_tokens: 80 } }),
      );
      assert.ok(calls.length >= 1, `${name}: ${text}`);
      assert.equal(text, "", name);
      assert.equal(done.finish_reason, "tool_calls", name);
      for (const c of calls) checkForecast(c.arguments);
    }
    // tool_choice none: no call is read, whatever the model writes.
    const none = await run(service, request("none", { params: { seed: 2, max_tokens: 16 } }));
    assert.equal(none.calls.length, 0, name);
    assert.notEqual(none.done.finish_reason, "tool_calls", name);
    service.close();
  }
});

Deno.test("a long prompt with tools renders the same in the prompt worker", async () => {
  const e = await engine();
  const req = request("required", { params: { seed: 4, max_tokens: 80 } });
  const inline = createLocalService({ engine: e, id: "stories260K" });
  const worker = createLocalService({ engine: e, id: "stories260K", inlinePromptWeight: 0 });
  try {
    const [a, b] = [await run(inline, req), await run(worker, req)];
    assert.equal(b.done.usage.prompt_tokens, a.done.usage.prompt_tokens);
    assert.deepEqual(
      b.calls.map((c) => [c.name, c.arguments]),
      a.calls.map((c) => [c.name, c.arguments]),
    );
  } finally {
    inline.close();
    worker.close();
  }
});
