/**
 * Prompt reuse through the local service: a member's next chat turn takes the cache its last
 * answer left (`timings.cached_n`: the shared prefix of the two rendered prompts), answers as a
 * cold node does, and another member sending the same conversation finds nothing cached.
 */
import assert from "node:assert/strict";
import { createBatchedCpuEngine } from "../inference/mod.ts";
import { commonPrefix } from "../inference/mod.ts";
import { STORIES } from "../tests/support/fixtures.ts";
import { createLocalService, promptTokens } from "./local-service.ts";
import type { ChatMessage, DoneEvent, InferEvent, InferRequest } from "./service.ts";

const { engine, batch } = await createBatchedCpuEngine({ path: STORIES, ctxSize: 256 });
const never = () => new AbortController().signal;

async function answer(events: AsyncIterable<InferEvent>) {
  const ids: number[] = [];
  let text = "";
  for await (const e of events) {
    if (e.type === "token") (ids.push(e.id), text += e.text);
    if (e.type === "done") return { ids, text: text + (e.tail ?? ""), done: e as DoneEvent };
  }
  throw new Error("no done event");
}

const chat = (messages: ChatMessage[]): InferRequest => ({
  model: "stories260K",
  messages,
  params: { temperature: 0, max_tokens: 24 },
});

Deno.test("local service: a member's next turn reuses its cache; another member's does not", async () => {
  const service = createLocalService({ engine, batch, id: "stories260K", maxConcurrent: 4 });
  const first: ChatMessage[] = [{ role: "user", content: "Once upon a time, there was a cat" }];
  const one = await answer(service.infer(chat(first), never(), "member-a"));
  assert.equal(one.done.timings.cached_n, 0);
  const next = chat([
    ...first,
    { role: "assistant", content: one.text },
    { role: "user", content: "What did the cat do next?" },
  ]);
  // What the slot holds: the first prompt and the answer but its last pick (never fed).
  const held = [...promptTokens(engine, chat(first)), ...one.ids.slice(0, -1)];
  const tokens = promptTokens(engine, next);
  const shared = Math.min(commonPrefix(held, tokens), tokens.length - 1);
  assert.ok(shared > promptTokens(engine, chat(first)).length, `shared ${shared}`);

  const two = await answer(service.infer(next, never(), "member-a"));
  assert.equal(two.done.timings.cached_n, shared);
  assert.equal(two.done.timings.prompt_n, tokens.length);

  const other = await answer(service.infer(next, never(), "member-b"));
  assert.equal(other.done.timings.cached_n, 0, "member B found member A's prefix");
  assert.equal(other.text, two.text);
  // This node's own requests have their own key: apart from both members'.
  const own = await answer(service.infer(next, never()));
  assert.equal(own.done.timings.cached_n, 0);
  assert.equal(own.text, two.text);

  const { engine: coldEngine, batch: coldBatch } = await createBatchedCpuEngine({
    path: STORIES,
    ctxSize: 256,
  });
  const cold = createLocalService({
    engine: coldEngine,
    batch: coldBatch,
    id: "stories260K",
    promptReuse: false,
  });
  const want = await answer(cold.infer(next, never(), "member-a"));
  assert.equal(want.done.timings.cached_n, 0);
  assert.equal(two.text, want.text, "a reused prefix answers as a cold run");
  service.close();
  cold.close();
});
