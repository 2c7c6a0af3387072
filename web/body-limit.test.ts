import assert from "node:assert/strict";
import { createNodeApp } from "./app.ts";
import { DEFAULT_MAX_BODY, formatBytes, NODE_API_MAX_BODY } from "./limits.ts";
import { fakeService } from "../tests/support/fake-service.ts";

const chat = JSON.stringify({ messages: [{ role: "user", content: "hi" }] });

/** A body that counts how many of its chunks were pulled. */
function counted(chunk: Uint8Array, chunks: number) {
  const seen = { pulled: 0 };
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (seen.pulled === chunks) return c.close();
      seen.pulled++;
      c.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  return { body, seen };
}

function post(path: string, body: BodyInit, headers: Record<string, string> = {}) {
  return new Request(`http://localhost${path}`, { method: "POST", body, headers });
}

async function tooLarge(res: Response, ...mentions: string[]) {
  assert.equal(res.status, 413);
  const { error } = await res.json();
  assert.equal(error.code, "request_too_large");
  assert.equal(error.type, "invalid_request_error");
  for (const m of mentions) assert.ok(error.message.includes(m), `${error.message} names ${m}`);
}

Deno.test("body limit: a Content-Length over the limit is a 413 before a byte is read", async () => {
  const service = fakeService();
  const app = createNodeApp({ service });
  const { body, seen } = counted(new Uint8Array(1 << 20), 100);
  const res = await app.fetch(
    post("/v1/chat/completions", body, { "content-length": String(100 << 20) }),
  );
  await tooLarge(res, "8 MiB", `${DEFAULT_MAX_BODY} bytes`, "--max-body");
  assert.equal(seen.pulled, 0);
  assert.equal(service.calls.length, 0);
});

Deno.test("body limit: a chunked body is cut as soon as it passes the limit", async () => {
  const service = fakeService();
  const app = createNodeApp({ service, maxBody: 64 * 1024 });
  const { body, seen } = counted(new Uint8Array(16 * 1024), 6400); // 100 MiB if read whole
  await tooLarge(await app.fetch(post("/v1/chat/completions", body)), "64 KiB", "--max-body");
  assert.equal(seen.pulled, 5, "stopped at the chunk that passed 64 KiB");
  assert.equal(service.calls.length, 0);
  // Just under the limit, chunked, is read and answered.
  const padded = JSON.stringify({
    messages: [{ role: "user", content: "x".repeat(60 * 1024) }],
  });
  const stream = new Blob([padded]).stream();
  const ok = await app.fetch(post("/v1/chat/completions", stream));
  assert.equal(ok.status, 200);
  assert.equal(service.calls[0].req.messages![0].content, "x".repeat(60 * 1024));
});

Deno.test("body limit: the node API takes 64 KiB; /v1 takes its default", async () => {
  const app = createNodeApp({
    service: fakeService(),
    node: { start: () => ({ state: "running" as const }), stop: () => ({ state: "off" as const }) },
  });
  const big = JSON.stringify({ mode: "serve", modelId: "x".repeat(NODE_API_MAX_BODY) });
  const res = await app.fetch(post("/api/node/start", big));
  await tooLarge(res, "64 KiB");
  assert.equal(formatBytes(NODE_API_MAX_BODY), "64 KiB");
  const small = await app.fetch(post("/api/node/start", '{"mode":"client"}'));
  assert.equal(small.status, 200); // the hook says it is already running
  await small.body?.cancel();
  // A 1 MiB prompt is far under /v1's limit.
  const prompt = JSON.stringify({ messages: [{ role: "user", content: "y".repeat(1 << 20) }] });
  const v1 = await app.fetch(post("/v1/chat/completions", prompt));
  assert.equal(v1.status, 200);
  await v1.body?.cancel();
  assert.equal((await app.fetch(post("/v1/chat/completions", chat))).status, 200);
});
