import assert from "node:assert/strict";
import { createRecentTimings } from "./recent-timings.ts";
import type { InferenceRecord } from "./metrics.ts";
import { createNodeApp } from "./app.ts";
import { fakeService, tokens } from "../tests/support/fake-service.ts";
import { ServiceError } from "../mesh/mod.ts";

const ok = (extra: Partial<InferenceRecord> = {}): InferenceRecord => ({
  endpoint: "chat",
  modelId: "tiny",
  outcome: "ok",
  ttftSeconds: 0.25,
  durationSeconds: 1.25,
  promptTokens: 7,
  completionTokens: 11,
  ...extra,
});

Deno.test("timings: ttft in ms and tokens/s after the first token", () => {
  const t = createRecentTimings();
  t.add(ok(), 1000);
  t.add(ok({ cachedTokens: 6 }), 2000);
  assert.deepEqual(t.recent(), [{
    at: 1000,
    modelId: "tiny",
    promptTokens: 7,
    cachedTokens: 0,
    completionTokens: 11,
    ttftMs: 250,
    tokensPerSecond: 10, // 10 tokens after the first, in 1 s
  }, {
    at: 2000,
    modelId: "tiny",
    promptTokens: 7,
    cachedTokens: 6, // a prompt reused from the serving node's cache
    completionTokens: 11,
    ttftMs: 250,
    tokensPerSecond: 10,
  }]);
});

Deno.test("timings: failures and answers without a token are left out; one token has no rate", () => {
  const t = createRecentTimings();
  t.add(ok({ outcome: "error" }));
  t.add(ok({ outcome: "cancelled", ttftSeconds: undefined, completionTokens: 0 }));
  t.add(ok({ completionTokens: 1 }));
  t.add(ok({ outcome: "cancelled", completionTokens: 3 }));
  assert.deepEqual(t.recent().map((r) => r.tokensPerSecond), [null, 2]);
});

Deno.test("timings: the ring keeps the last `limit` requests, oldest first", () => {
  const t = createRecentTimings(3);
  for (let i = 1; i <= 7; i++) t.add(ok({ promptTokens: i }), i);
  assert.deepEqual(t.recent().map((r) => r.promptTokens), [5, 6, 7]);
  assert.deepEqual(t.recent().map((r) => r.at), [5, 6, 7]);
  assert.equal(createRecentTimings().recent().length, 0);
});

Deno.test("GET /api/timings: each /v1 answer, streamed or not, from any API; not a failed one", async () => {
  let fail = false;
  const service = fakeService({
    reply: () => fail ? new ServiceError("unavailable", "no") : tokens("a", "b", "c"),
  });
  const app = createNodeApp({ service });
  const post = (path: string, body: unknown) =>
    app.fetch(
      new Request(`http://127.0.0.1${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
    );
  const get = async () =>
    (await (await app.fetch(new Request("http://127.0.0.1/api/timings"))).json()).recent;
  assert.deepEqual(await get(), []);
  const messages = [{ role: "user", content: "hi" }];
  await (await post("/v1/chat/completions", { model: "tiny", messages })).text();
  await (await post("/v1/chat/completions", { model: "tiny", messages, stream: true })).text();
  await (await post("/v1/messages", { model: "tiny", messages, max_tokens: 5 })).text();
  fail = true;
  assert.equal((await post("/v1/chat/completions", { model: "tiny", messages })).status, 503);
  const recent = await get();
  assert.equal(recent.length, 3);
  for (const r of recent) {
    assert.equal(r.modelId, "tiny");
    assert.equal(r.promptTokens, 7);
    assert.equal(r.completionTokens, 3);
    assert.ok(r.ttftMs >= 0 && typeof r.tokensPerSecond === "number", JSON.stringify(r));
  }
  assert.ok(recent[0].at <= recent[2].at, "oldest first");
});
