import assert from "node:assert/strict";
import { createCpuEngine } from "../inference/mod.ts";
import { createLocalService, decodeVector, type EmbedRequest } from "../mesh/mod.ts";
import { createNodeApp } from "./app.ts";
import { inputsOf, parseEmbeddingsBody } from "./openai-embeddings.ts";
import { fakeService } from "../tests/support/fake-service.ts";
import { STORIES } from "../tests/support/fixtures.ts";

const engine = await createCpuEngine({ path: STORIES, ctxSize: 64 });
const post = (path: string, body: unknown) =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

Deno.test("OpenAI's four input forms, and 400s that name the field", () => {
  assert.deepEqual(inputsOf("a", "input"), ["a"]);
  assert.deepEqual(inputsOf(["a", "b"], "input"), ["a", "b"]);
  assert.deepEqual(inputsOf([1, 2], "input"), [[1, 2]]);
  assert.deepEqual(inputsOf([[1], [2, 3]], "input"), [[1], [2, 3]]);
  const bad = (body: Record<string, unknown>, param: string) =>
    assert.throws(() => parseEmbeddingsBody(body), (e: { param?: string }) => e.param === param);
  bad({ input: "" }, "input");
  bad({ input: [] }, "input");
  bad({ input: ["a", ""] }, "input");
  bad({ input: [[1, -1]] }, "input");
  bad({ input: Array(2049).fill("a") }, "input");
  bad({ input: 5 }, "input");
  bad({ input: "a", encoding_format: "int8" }, "encoding_format");
  bad({ input: "a", dimensions: 0 }, "dimensions");
  bad({ input: "a", pooling: "cls" }, "pooling");
  bad({ input: "a", model: 5 }, "model");
  assert.equal(parseEmbeddingsBody({ input: "a", pooling: "mean" }).pooling, "mean");
});

Deno.test("POST /v1/embeddings on a serving node: unit vectors, in order, usage, base64 the same bits", async () => {
  const service = createLocalService({ engine, id: "stories260K" });
  const app = createNodeApp({ service });
  try {
    const input = ["Once upon a time", "The cat sat", "Once upon a time"];
    const res = await app.fetch(post("/v1/embeddings", { model: "stories260K", input }));
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.object, "list");
    assert.equal(body.model, "stories260K");
    const vectors: number[][] = body.data.map(
      (d: { object: string; index: number; embedding: number[] }, i: number) => {
        assert.equal(d.object, "embedding");
        assert.equal(d.index, i);
        assert.equal(d.embedding.length, engine.config.dim);
        assert.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-5);
        return d.embedding;
      },
    );
    assert.deepEqual(vectors[0], vectors[2]);
    assert.notDeepEqual(vectors[0], vectors[1]);
    const tokens = input.reduce((n, t) => n + engine.tokenizer.encode(t).length, 0);
    assert.deepEqual(body.usage, { prompt_tokens: tokens, total_tokens: tokens });

    const b64 = await (await app.fetch(post("/v1/embeddings", {
      model: "stories260K",
      input,
      encoding_format: "base64",
    }))).json();
    b64.data.forEach((d: { embedding: string }, i: number) => {
      assert.deepEqual(Array.from(decodeVector(d.embedding)!), vectors[i]);
    });

    const wrongWidth = await app.fetch(post("/v1/embeddings", { input: "a", dimensions: 8 }));
    assert.equal(wrongWidth.status, 400);
    const err = (await wrongWidth.json()).error;
    assert.equal(err.param, "dimensions");
    assert.match(err.message, /hidden size, 64 dimensions/);
    const same = await app.fetch(post("/v1/embeddings", { input: "a", dimensions: 64 }));
    assert.equal(same.status, 200);

    const long = await app.fetch(post("/v1/embeddings", { input: ["a", "b ".repeat(200)] }));
    assert.equal(long.status, 400);
    assert.equal((await long.json()).error.code, "context_length_exceeded");
  } finally {
    service.close();
  }
});

Deno.test("more inputs than one mesh request holds go in batches of 256, in order; Ollama's /api/embed", async () => {
  const seen: EmbedRequest[] = [];
  const service = Object.assign(fakeService(), {
    embed(req: EmbedRequest) {
      seen.push(req);
      const data = req.embed.input.map((x) => Float32Array.from([Number(x), 0]));
      // Not unit vectors: this fake shows where each one went, not what a model makes.
      return Promise.resolve({ data, usage: { prompt_tokens: data.length * 2 } });
    },
  });
  const app = createNodeApp({ service });
  const input = Array.from({ length: 600 }, (_, i) => String(i));
  const body = await (await app.fetch(post("/v1/embeddings", { model: "tiny", input }))).json();
  assert.deepEqual(seen.map((r) => r.embed.input.length), [256, 256, 88]);
  assert.deepEqual(
    body.data.map((d: { embedding: number[] }) => d.embedding[0]),
    input.map(Number),
  );
  assert.equal(body.usage.prompt_tokens, 1200);

  const ollama = await app.fetch(post("/api/embed", { model: "tiny:latest", input: ["7", "8"] }));
  assert.equal(ollama.status, 200);
  const o = await ollama.json();
  assert.equal(o.model, "tiny");
  assert.deepEqual(o.embeddings, [[7, 0], [8, 0]]);
  assert.equal(o.prompt_eval_count, 4);
  assert.equal(seen.at(-1)!.embed.truncate, true); // Ollama's default
  const refused = await app.fetch(post("/api/embed", { model: "tiny", input: "1", truncate: 1 }));
  assert.equal(refused.status, 400);
  assert.match((await refused.json()).error, /truncate/);
  // A service without embeddings (a fake, here) says so.
  const none = await createNodeApp({ service: fakeService() }).fetch(
    post("/v1/embeddings", { input: "a" }),
  );
  assert.equal(none.status, 400);
});
