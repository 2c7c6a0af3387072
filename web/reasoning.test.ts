import assert from "node:assert/strict";
import type { DoneEvent, InferEvent } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { readSse } from "./sse.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";

/** "Hm, " and "ok" as reasoning, a malformed reasoning field (a peer's), then "Hi", "!", and a
 * held-back reasoning tail on done. */
function answer(): InferEvent[] {
  const events = tokens("", "", "", "Hi", "!");
  const [a, b, c] = events as Extract<InferEvent, { type: "token" }>[];
  a.reasoning = "Hm, ";
  b.reasoning = "ok";
  (c as unknown as Record<string, unknown>).reasoning = 42;
  (events.at(-1) as DoneEvent).tail_reasoning = ".";
  return events;
}

const post = (path: string, body: Record<string, unknown>) =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "tiny",
      max_tokens: 9,
      messages: [{ role: "user", content: "hi" }],
      ...body,
    }),
  });

Deno.test("reasoning: OpenAI chat whole and streamed (logprobs ride with a reasoning-only token)", async () => {
  const app = createNodeApp({ service: fakeService({ reply: answer }) });
  const whole = await (await app.fetch(post("/v1/chat/completions", {}))).json();
  assert.deepEqual(whole.choices[0].message, {
    role: "assistant",
    content: "Hi!",
    reasoning_content: "Hm, ok.",
    refusal: null,
  });
  const res = await app.fetch(post("/v1/chat/completions", { stream: true, logprobs: true }));
  const deltas: unknown[] = [];
  for await (const data of readSse(res.body!)) {
    if (data === "[DONE]") break;
    const choice = JSON.parse(data).choices[0];
    if (choice.finish_reason) continue;
    deltas.push([choice.delta, choice.logprobs?.content?.length ?? 0]);
  }
  assert.deepEqual(deltas, [
    [{ role: "assistant", content: "" }, 0],
    [{ reasoning_content: "Hm, " }, 1],
    [{ reasoning_content: "ok" }, 1],
    [{ content: "" }, 1], // the malformed field is no reasoning: an empty token with its logprobs
    [{ content: "Hi" }, 1],
    [{ content: "!" }, 1],
    [{ reasoning_content: "." }, 0],
  ]);
});

Deno.test("reasoning: Anthropic thinking block, Ollama thinking, whole and streamed", async () => {
  const app = createNodeApp({ service: fakeService({ reply: answer }) });
  const message = await (await app.fetch(post("/v1/messages", {}))).json();
  assert.deepEqual(message.content, [
    { type: "thinking", thinking: "Hm, ok.", signature: "" },
    { type: "text", text: "Hi!" },
  ]);
  const chat = await (await app.fetch(post("/api/chat", { stream: false }))).json();
  assert.deepEqual([chat.message.content, chat.message.thinking], ["Hi!", "Hm, ok."]);
  const res = await app.fetch(post("/api/chat", {}));
  const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).message);
  // The empty token shows nothing; the held-back tail comes on a line of its own before the last.
  assert.deepEqual(lines.map((m) => [m.thinking ?? "", m.content]), [
    ["Hm, ", ""],
    ["ok", ""],
    ["", "Hi"],
    ["", "!"],
    [".", ""],
    ["", ""],
  ]);
});
